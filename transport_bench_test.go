// Benchmarks of a Transport (transport.go): a success on loopback beside a
// bare http.Transport, what a success costs the Transport itself, and a
// 64 MiB upload retried without being buffered.

package neuracraft

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSuccessPath compares a successful GET through a bare
// http.Transport with the same through a Transport over it, on loopback
// with keep-alive. Run with:
//
//	go test -run '^$' -bench SuccessPath -benchmem -count 10 .
func BenchmarkSuccessPath(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"pipe_abc123","name":"nightly","created_at":"2026-11-26T12:00:00Z"}`)
	}))
	defer srv.Close()
	clients := []struct {
		name string
		rt   func() http.RoundTripper
	}{
		{"bare", func() http.RoundTripper { return newBare() }},
		{"neuracraft", func() http.RoundTripper { return &Transport{Base: newBare()} }},
	}
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			rt := c.rt()
			defer rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
			req, err := http.NewRequestWithContext(context.Background(), "GET", srv.URL+"/v1/pipelines/pipe_abc123", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

func newBare() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 8
	return t
}

// BenchmarkRetriedUpload sends a 64 MiB upload that is answered 503 once
// and then 200; B/op shows that the retry does not buffer the body.
func BenchmarkRetriedUpload(b *testing.B) {
	const size = 64 << 20
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if fail {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fail = !fail
	}))
	defer srv.Close()
	rt := &Transport{Base: newBare(), Retry: RetryPolicy{BaseDelay: time.Microsecond}, DisableBudget: true}
	defer rt.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest("PUT", srv.URL+"/v1/plugins/custom", io.NopCloser(nil))
		if err != nil {
			b.Fatal(err)
		}
		req.Body, req.ContentLength = io.NopCloser(newZeros(size)), size
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(newZeros(size)), nil }
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

// zeros is a reader of n zero bytes that holds no buffer of its own.
type zeros struct{ n int64 }

func newZeros(n int64) *zeros { return &zeros{n} }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// BenchmarkTransportOverhead is what a successful call costs the Transport
// itself, over a base that answers at once: the request ID (a copy of the
// request and its header map, and the ID) and the host-state check.
func BenchmarkTransportOverhead(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-API-Key", "nc_bench")
	for _, tc := range []struct {
		name      string
		requestID string
	}{{"generated-id", ""}, {"caller-id", "req_caller"}} {
		b.Run(tc.name, func(b *testing.B) {
			r := req.Clone(req.Context())
			if tc.requestID != "" {
				r.Header.Set("X-Request-ID", tc.requestID)
			}
			tr := &Transport{Base: base}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.RoundTrip(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
