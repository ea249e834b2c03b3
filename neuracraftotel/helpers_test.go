// Test helpers: an Observer on the SDK's ManualReader and SpanRecorder,
// and the recorded metrics flattened into comparable points.

package neuracraftotel

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// harness is an Observer whose metrics go to a ManualReader and whose
// callers' spans go to a SpanRecorder.
type harness struct {
	obs    *Observer
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tracer trace.Tracer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, tp.Shutdown(context.Background()))
	})
	return &harness{
		obs:    New(Options{MeterProvider: mp, TracerProvider: tp}),
		reader: reader,
		spans:  spans,
		tracer: tp.Tracer("caller"),
	}
}

// point is one data point of a metric: its attributes as "key=value"
// strings, sorted, and its value (a histogram's count, with its sum).
type point struct {
	Attrs []string
	Value float64
	Sum   float64
}

func attrStrings(set attribute.Set) []string {
	var out []string
	for _, kv := range set.ToSlice() {
		out = append(out, fmt.Sprintf("%s=%s", kv.Key, kv.Value.String()))
	}
	return out
}

// collect reads every metric of the reader, by name, each point sorted
// by its attributes. Points whose value is zero are kept.
func (h *harness) collect(t *testing.T) map[string][]point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	out := map[string][]point{}
	for _, sm := range rm.ScopeMetrics {
		require.Equal(t, scope, sm.Scope.Name)
		for _, m := range sm.Metrics {
			var pts []point
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					pts = append(pts, point{Attrs: attrStrings(p.Attributes), Value: float64(p.Value)})
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					pts = append(pts, point{Attrs: attrStrings(p.Attributes), Value: p.Value})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					pts = append(pts, point{Attrs: attrStrings(p.Attributes), Value: float64(p.Count), Sum: p.Sum})
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
			slices.SortFunc(pts, func(a, b point) int {
				return strings.Compare(strings.Join(a.Attrs, ","), strings.Join(b.Attrs, ","))
			})
			out[m.Name] = pts
		}
	}
	return out
}

// total is the sum of the values of a metric's points.
func total(pts []point) float64 {
	var n float64
	for _, p := range pts {
		n += p.Value
	}
	return n
}

// spanEvents returns the events of the ended spans, as "name k=v ..."
// strings, attributes sorted.
func (h *harness) spanEvents() []string {
	var out []string
	for _, s := range h.spans.Ended() {
		for _, e := range s.Events() {
			out = append(out, strings.Join(append([]string{e.Name}, attrStrings(attribute.NewSet(e.Attributes...))...), " "))
		}
	}
	return out
}

// waitSpans returns the ended "neuracraft.wait" spans, as "kind=...
// [error.type=...] <duration> under <parent's name>" strings, and fails
// when one is not a child of an ended span of the recorder.
func (h *harness) waitSpans(t *testing.T) []string {
	t.Helper()
	names := map[trace.SpanID]string{}
	for _, s := range h.spans.Ended() {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	var out []string
	for _, s := range h.spans.Ended() {
		if s.Name() != "neuracraft.wait" {
			continue
		}
		parent, ok := names[s.Parent().SpanID()]
		if !ok || s.Parent().TraceID() != s.SpanContext().TraceID() {
			t.Errorf("wait span %v: no parent among the recorded spans", s.SpanContext().SpanID())
		}
		attrs := attrStrings(attribute.NewSet(s.Attributes()...))
		out = append(out, fmt.Sprintf("%s %v %s under %s", strings.Join(attrs, " "), s.EndTime().Sub(s.StartTime()),
			s.Status().Code, parent))
	}
	return out
}

// scripted is a Base that answers the given statuses in turn, the last
// one again once they run out; a 429 or 503 comes with Retry-After: 1.
func scripted(statuses ...int) http.RoundTripper {
	var mu sync.Mutex
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		status := statuses[0]
		if len(statuses) > 1 {
			statuses = statuses[1:]
		}
		mu.Unlock()
		h := http.Header{}
		if status == 429 || status == 503 {
			h.Set("Retry-After", "1")
		}
		return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newRequest is a GET of url with ctx.
func newRequest(t *testing.T, ctx context.Context, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	return req
}
