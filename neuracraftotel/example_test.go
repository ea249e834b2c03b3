package neuracraftotel_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracraftotel"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// A 429 storm: 20 calls reach the API at once and are all answered 429
// with Retry-After: 1. The Transport holds them for the second asked, then
// lets them go one at a time at the host's pace, which starts at 20 a
// second and speeds up while they succeed (neuracraft.client.pace reads
// it; it is left out here, as its last value depends on how fast the
// answers come), and all succeed; the metrics say so. The SDK's
// ManualReader stands for your exporter.
func Example_storm() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	srv.Fail("GET /pipelines", 20, neuracrafttest.RateLimit("1"))

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	client := &http.Client{Transport: &neuracraft.Transport{
		Base:     &together{n: 20, base: srv.Client().Transport},
		Observer: neuracraftotel.New(neuracraftotel.Options{MeterProvider: mp}),
	}}

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+"/pipelines", nil)
			req.Header.Set("X-API-Key", srv.APIKey)
			resp, err := client.Do(req)
			if err != nil {
				fmt.Println(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	printMetrics(reader)
	// Output:
	// neuracraft.client.attempts error.type=429 http.response.status_code=429: 20
	// neuracraft.client.attempts http.response.status_code=200: 20
	// neuracraft.client.held neuracraft.wait.kind=cooldown: 0
	// neuracraft.client.retries error.type=429 http.response.status_code=429: 20
	// neuracraft.client.wait.duration neuracraft.wait.kind=cooldown: 20 waits
}

// together is a RoundTripper that holds the first n requests until all n
// have come, and then sends them at once, as a storm does.
type together struct {
	n    int
	base http.RoundTripper

	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (t *together) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	if t.all == nil {
		t.all = make(chan struct{})
	}
	t.arrived++
	if t.arrived == t.n {
		close(t.all)
	}
	all := t.all
	t.mu.Unlock()
	<-all
	return t.base.RoundTrip(req)
}

// printMetrics prints each data point of the counters and histograms of
// reader, one a line, sorted, with its attributes but the method and the
// server (whose port changes).
func printMetrics(reader *sdkmetric.ManualReader) {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		fmt.Println(err)
		return
	}
	var lines []string
	line := func(name string, set attribute.Set, value string) {
		parts := []string{name}
		for _, kv := range set.ToSlice() {
			if k := string(kv.Key); k != "http.request.method" && !strings.HasPrefix(k, "server.") {
				parts = append(parts, k+"="+kv.Value.String())
			}
		}
		lines = append(lines, strings.Join(parts, " ")+": "+value)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					line(m.Name, p.Attributes, fmt.Sprint(p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					line(m.Name, p.Attributes, fmt.Sprint(p.Count, " waits"))
				}
			}
		}
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
}
