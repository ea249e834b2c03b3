// This file holds scenario 3, the rate-limit storm: many concurrent
// callers against a server that admits 50 requests a second and answers
// 429 with Retry-After: 1 beyond that.

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// firstWaveGrace is how long after its first 429 the server still counts
// a 429 as part of the first wave: requests that arrive this soon were
// sent before the client could have read that 429 (on this machine they
// arrive within a few ms of it). Every client gets the same grace.
const firstWaveGrace = 100 * time.Millisecond

// stormServer admits requests through a token bucket (a rate.Limiter,
// full at the start) and counts what it answers.
type stormServer struct {
	*httptest.Server
	limiter *rate.Limiter

	mu        sync.Mutex
	requests  int
	limited   int       // 429s sent
	firstWave int       // 429s sent within firstWaveGrace of the first
	first429  time.Time // when the first 429 was sent
}

// newStormServer returns a storm server admitting perSecond requests a
// second with bursts of up to burst.
func newStormServer(perSecond float64, burst int) *stormServer {
	s := &stormServer{limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// admit counts a request arriving at now and reports whether the limiter
// admits it; a refused one is counted as a 429, and as part of the first
// wave when it comes within firstWaveGrace of the first 429.
func (s *stormServer) admit(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	allowed := s.limiter.AllowN(now, 1)
	if !allowed {
		s.limited++
		if s.first429.IsZero() {
			s.first429 = now
		}
		if now.Sub(s.first429) <= firstWaveGrace {
			s.firstWave++
		}
	}
	return allowed
}

func (s *stormServer) serve(w http.ResponseWriter, r *http.Request) {
	allowed := s.admit(time.Now())
	w.Header().Set("Content-Type", "application/json")
	if !allowed {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(errorBody(429, "rate_limited", "Too many requests; retry after 1 s.")))
		return
	}
	_, _ = w.Write(okBody)
}

// stormResult is one run of scenario 3 for one client.
type stormResult struct {
	requests, limited, firstWave int
	succeeded, failed            int
	p50, p99                     float64 // ms
	wall                         time.Duration
	capped                       bool // the scenario's time cap cut calls short
}

// runStorm runs scenario 3 once for a fresh client of kind k.
func runStorm(k kind, cfg *config) stormResult {
	srv := newStormServer(cfg.stormRate, int(cfg.stormRate))
	defer srv.Close()
	c := newClient(k)
	defer c.close()
	url := srv.URL + "/v1/pipelines"

	scenarioCtx, cancel := context.WithTimeout(context.Background(), cfg.stormCap)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []float64
		res       stormResult
		wg        sync.WaitGroup
	)
	startGate := make(chan struct{})
	for caller := range cfg.stormCallers {
		wg.Go(func() {
			<-startGate
			for i := range cfg.stormCalls {
				ctx, cancel := context.WithTimeout(scenarioCtx, cfg.callTimeout)
				t0 := time.Now()
				status, err := c.do(ctx, &call{method: http.MethodGet, url: url, id: fmt.Sprintf("%d/%d", caller, i)})
				d := time.Since(t0)
				cancel()
				mu.Lock()
				latencies = append(latencies, ms(d))
				if ok(status, err) {
					res.succeeded++
				} else {
					res.failed++
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	close(startGate)
	wg.Wait()
	res.wall = time.Since(start)
	res.capped = scenarioCtx.Err() != nil
	res.p50, res.p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
	srv.mu.Lock()
	res.requests, res.limited, res.firstWave = srv.requests, srv.limited, srv.firstWave
	srv.mu.Unlock()
	return res
}

// scenarioStorm runs scenario 3 cfg.reps times per client, interleaved.
func scenarioStorm(t *table, cfg *config) {
	var requests, limited, beyond, succeeded, failed, p50, p99, wall series
	capped := false
	for rep := range cfg.reps {
		for _, k := range order(rep) {
			r := runStorm(k, cfg)
			capped = capped || r.capped
			requests.add(k, float64(r.requests))
			limited.add(k, float64(r.limited))
			beyond.add(k, float64(r.limited-r.firstWave))
			succeeded.add(k, float64(r.succeeded))
			failed.add(k, float64(r.failed))
			p50.add(k, r.p50)
			p99.add(k, r.p99)
			wall.add(k, r.wall.Seconds())
			cfg.progress("scenario 3: %s repetition %d: %d requests, %d × 429 (%d in the first wave), %d ok, %d failed, %.1f s",
				k, rep+1, r.requests, r.limited, r.firstWave, r.succeeded, r.failed, r.wall.Seconds())
		}
	}
	calls := cfg.stormCallers * cfg.stormCalls
	name := fmt.Sprintf("3. Rate-limit storm (%d callers × %d calls, limit %.0f/s)", cfg.stormCallers, cfg.stormCalls, cfg.stormRate)
	t.add(name, "requests received by the server", "%.0f", &requests)
	t.add(name, "429s sent (requests above the limit)", "%.0f", &limited)
	t.add(name, fmt.Sprintf("429s after the first wave (%s grace)", firstWaveGrace), "%.0f", &beyond)
	t.add(name, fmt.Sprintf("calls succeeded (of %d)", calls), "%.0f", &succeeded)
	t.add(name, "calls failed", "%.0f", &failed)
	t.add(name, "call latency p50 (ms)", "%.1f", &p50)
	t.add(name, "call latency p99 (ms)", "%.1f", &p99)
	t.add(name, "wall time (s)", "%.2f", &wall)
	if capped {
		cfg.progress("scenario 3: the %s cap cut some runs short", cfg.stormCap)
	}
}
