// Benchmarks of the success path with and without the Observer.

package neuracraftotel

import (
	"net/http"
	"testing"

	"github.com/neuracraft/neuracraft-go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// BenchmarkObserver is a successful GET (the caller's request ID, a Base
// that answers at once) through a Transport without an Observer and with
// this package's, recording on the SDK's MeterProvider. Run with:
//
//	cd neuracraftotel && go test -run '^$' -bench Observer -benchmem -count 6 .
func BenchmarkObserver(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return ok, nil })
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-Request-ID", "req_1")
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(b.Context()) })
	for _, bc := range []struct {
		name string
		obs  neuracraft.Observer
	}{{"nil", nil}, {"neuracraftotel", New(Options{MeterProvider: mp})}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &neuracraft.Transport{Base: base, Observer: bc.obs}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
