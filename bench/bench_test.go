package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"testing"
	"time"
)

// BenchmarkSuccess is scenario 1 as go test benchmarks, for benchstat:
//
//	go test -run '^$' -bench . -benchmem -count 10 | tee new.txt
//	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da new.txt
//
// The server runs in a child process, as in the program, so that B/op and
// allocs/op count the client only.
func BenchmarkSuccess(b *testing.B) {
	url, stop, err := startSuccessServer(false)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	for _, k := range kinds {
		b.Run(k.String(), func(b *testing.B) {
			for _, op := range successOps {
				b.Run(op.name, func(b *testing.B) {
					c := newClient(k)
					defer c.close()
					runSuccess(b, c, op, url, nil)
				})
			}
		})
	}
}

// BenchmarkRequestIDHeader is a GET through bare and neuracraft with an
// X-Request-ID header set by the caller (neuracraft then adds none): it
// separates what one more header costs net/http and the server from what
// neuracraft's transport costs. Compare with BenchmarkSuccess/*/get.
func BenchmarkRequestIDHeader(b *testing.B) {
	url, stop, err := startSuccessServer(false)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	for _, k := range []kind{bare, ours} {
		b.Run(k.String(), func(b *testing.B) {
			c := newClient(k)
			defer c.close()
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/pipelines/pipe_0123456789", nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("X-Request-Id", "0123456789abcdef0123456789abcdef") // canonical: no key allocation
				resp, err := c.hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}

func TestMain(m *testing.M) {
	serveIfChild()
	os.Exit(m.Run())
}

func TestTokenBucket(t *testing.T) {
	b := tokenBucket{rate: 50, burst: 50}
	t0 := time.Unix(1000, 0)
	n := 0
	for range 100 {
		if b.allow(t0) {
			n++
		}
	}
	if n != 50 {
		t.Errorf("burst at one instant admitted %d, want 50", n)
	}
	if b.allow(t0.Add(10 * time.Millisecond)) {
		t.Errorf("admitted after 10 ms, when only half a token has come back")
	}
	if !b.allow(t0.Add(20 * time.Millisecond)) {
		t.Errorf("refused after 20 ms, when one token has come back")
	}
	n = 0
	for range 100 {
		if b.allow(t0.Add(time.Hour)) {
			n++
		}
	}
	if n != 50 {
		t.Errorf("after an hour admitted %d, want the burst, 50", n)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, math.NaN(), 3, 2, 4}
	for _, tc := range []struct{ p, want float64 }{{50, 3}, {99, 5}, {1, 1}, {100, 5}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", xs, tc.p, got, tc.want)
		}
	}
	if got := median([]float64{1, 2, 3, 10}); got != 2.5 {
		t.Errorf("median of an even count = %v, want 2.5", got)
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestGenBody(t *testing.T) {
	const size = 100_003
	g := newGenBody(size)
	if g.Len() != size {
		t.Fatalf("Len = %d, want %d", g.Len(), size)
	}
	n, err := io.Copy(io.Discard, g)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
}
