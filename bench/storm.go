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
)

// tokenBucket admits rate requests a second with bursts of up to burst.
// It starts full. Time is a parameter so that it can be tested without
// sleeping.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// allow reports whether a request at now is admitted, and takes a token
// if so.
func (b *tokenBucket) allow(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// firstWaveGrace is how long after its first 429 the server still counts
// a 429 as part of the first wave: requests that arrive this soon were
// sent before the client could have read that 429 (on this machine they
// arrive within a few ms of it). Every client gets the same grace.
const firstWaveGrace = 100 * time.Millisecond

// stormServer enforces a token bucket and counts what it answers.
type stormServer struct {
	*httptest.Server

	mu        sync.Mutex
	bucket    tokenBucket
	requests  int
	limited   int       // 429s sent
	firstWave int       // 429s sent within firstWaveGrace of the first
	first429  time.Time // when the first 429 was sent
}

func newStormServer(rate, burst float64) *stormServer {
	s := &stormServer{bucket: tokenBucket{rate: rate, burst: burst}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *stormServer) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	s.requests++
	allowed := s.bucket.allow(now)
	if !allowed {
		s.limited++
		if s.first429.IsZero() {
			s.first429 = now
		}
		if now.Sub(s.first429) <= firstWaveGrace {
			s.firstWave++
		}
	}
	s.mu.Unlock()
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
	p50, p99                     time.Duration
	wall                         time.Duration
	capped                       bool // the scenario's time cap cut calls short
}

// runStorm runs scenario 3 once for a fresh client of kind k.
func runStorm(k kind, cfg *config) stormResult {
	srv := newStormServer(cfg.stormRate, cfg.stormRate)
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
				latencies = append(latencies, float64(d))
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
	res.p50 = time.Duration(percentile(latencies, 50))
	res.p99 = time.Duration(percentile(latencies, 99))
	srv.mu.Lock()
	res.requests, res.limited, res.firstWave = srv.requests, srv.limited, srv.firstWave
	srv.mu.Unlock()
	return res
}

// scenarioStorm runs scenario 3 cfg.reps times per client, interleaved.
func scenarioStorm(t *table, cfg *config) []target {
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
			p50.add(k, ms(r.p50))
			p99.add(k, ms(r.p99))
			wall.add(k, r.wall.Seconds())
			cfg.progress("scenario 3: %s repetition %d: %d requests, %d × 429 (%d in the first wave), %d ok, %d failed, %.1f s",
				k, rep+1, r.requests, r.limited, r.firstWave, r.succeeded, r.failed, r.wall.Seconds())
		}
	}
	calls := cfg.stormCallers * cfg.stormCalls
	name := fmt.Sprintf("3. Rate-limit storm (%d callers × %d calls, limit %.0f/s)", cfg.stormCallers, cfg.stormCalls, cfg.stormRate)
	t.add(name, "requests received by the server", "%.0f", true, &requests)
	t.add(name, "429s sent (requests above the limit)", "%.0f", true, &limited)
	t.add(name, fmt.Sprintf("429s after the first wave (%s grace)", firstWaveGrace), "%.0f", true, &beyond)
	t.add(name, fmt.Sprintf("calls succeeded (of %d)", calls), "%.0f", true, &succeeded)
	t.add(name, "calls failed", "%.0f", true, &failed)
	t.add(name, "call latency p50 (ms)", "%.1f", true, &p50)
	t.add(name, "call latency p99 (ms)", "%.1f", true, &p99)
	t.add(name, "wall time (s)", "%.2f", true, &wall)
	if capped {
		cfg.progress("scenario 3: the %s cap cut some runs short", cfg.stormCap)
	}
	b := median(beyond[ours])
	return []target{{
		name: "3. no more than a handful (≤ 10) of 429s after the first wave",
		measured: fmt.Sprintf("%.0f after the first wave, %.0f in all (retryablehttp %.0f / %.0f)",
			b, median(limited[ours]), median(beyond[retryable]), median(limited[retryable])),
		met: b <= 10,
	}}
}
