package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
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
	redis.SetLogger(quietRedis)
	code := m.Run()
	if n := quietRedis.lines.Load(); n > 0 && testing.Verbose() {
		fmt.Printf("go-redis logged %d lines (dropped: the tests stop Redis under members)\n", n)
	}
	os.Exit(code)
}

// TestStormServerAdmit checks the storm server's limiter with explicit
// instants: the burst at once, one token back per 1/rate, the burst again
// after a long pause, and the first-wave accounting of the 429s.
func TestStormServerAdmit(t *testing.T) {
	s := &stormServer{limiter: rate.NewLimiter(50, 50)}
	t0 := time.Unix(1000, 0)
	admitted := func(at time.Time, n int) int {
		got := 0
		for range n {
			if s.admit(at) {
				got++
			}
		}
		return got
	}
	require.Equal(t, 50, admitted(t0, 100), "a burst at one instant")
	assert.Equal(t, 0, admitted(t0.Add(10*time.Millisecond), 1), "after 10 ms only half a token is back")
	assert.Equal(t, 1, admitted(t0.Add(20*time.Millisecond), 1), "after 20 ms one token is back")
	assert.Equal(t, 9, admitted(t0.Add(200*time.Millisecond), 10), "180 ms later, 9 tokens are back")
	assert.Equal(t, 50, admitted(t0.Add(time.Hour), 100), "after an hour, the burst again")
	assert.Equal(t, 100+1+1+10+100, s.requests)
	assert.Equal(t, 50+1+1+50, s.limited)
	assert.Equal(t, 50+1, s.firstWave, "429s within firstWaveGrace of the first one")
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, math.NaN(), 3, 2, 4}
	for _, tc := range []struct{ q, want float64 }{
		{0.5, 3}, {0, 1}, {1, 5}, {0.25, 2}, {0.75, 4}, {0.99, 4.96}, {-1, 1}, {2, 5},
	} {
		assert.InDelta(t, tc.want, quantile(xs, tc.q), 1e-9, "quantile(%v, %v)", xs, tc.q)
	}
	assert.Equal(t, 2.5, median([]float64{10, 1, 3, 2}), "the median of an even count")
	assert.Equal(t, 7.0, median([]float64{7}))
	assert.True(t, math.IsNaN(median(nil)), "median(nil)")
	assert.True(t, math.IsNaN(median([]float64{math.NaN()})), "median of NaNs only")
	if diff := cmp.Diff(summary{median: 3, q1: 2, q3: 4}, summarize(xs), cmp.AllowUnexported(summary{})); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
}

func TestPairedRatios(t *testing.T) {
	var s series
	s[bare] = []float64{100, 200, 0}
	s[ours] = []float64{110, 180, 5}
	if diff := cmp.Diff([]float64{1.1, 0.9}, pairedRatios(&s, ours), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("pairedRatios (-want +got):\n%s", diff)
	}
}

func TestGenBody(t *testing.T) {
	const size = 100_003
	g := newGenBody(size)
	require.Equal(t, size, g.Len())
	n, err := io.Copy(io.Discard, g)
	require.NoError(t, err)
	assert.EqualValues(t, size, n)
}
