// This file holds scenario 5, the deadline: a server asks for a 30 s
// wait, the caller has 1 s, and we time how long each client takes to
// give up.

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"
)

// newThrottleServer answers every request 429 with Retry-After: 30 and
// counts them.
func newThrottleServer(attempts *atomic.Int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(errorBody(429, "rate_limited", "Too many requests; retry after 30 s.")))
	}))
}

// runDeadline runs scenario 5 once for a fresh client of kind k and
// returns how long the call took and how many attempts the server saw.
func runDeadline(k kind, cfg *config) (time.Duration, int64) {
	var attempts atomic.Int64
	srv := newThrottleServer(&attempts)
	defer srv.Close()
	c := newClient(k)
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.deadline)
	defer cancel()
	start := time.Now()
	_, _ = c.do(ctx, &call{method: http.MethodGet, url: srv.URL + "/v1/pipelines"})
	return time.Since(start), attempts.Load()
}

// scenarioDeadline runs scenario 5 cfg.fastReps times per client,
// interleaved.
func scenarioDeadline(t *table, cfg *config) {
	var took, attempts series
	for rep := range cfg.fastReps {
		for _, k := range order(rep) {
			d, n := runDeadline(k, cfg)
			took.add(k, ms(d))
			attempts.add(k, float64(n))
		}
	}
	cfg.progress("scenario 5: done")
	name := fmt.Sprintf("5. Deadline %s vs Retry-After: 30", cfg.deadline)
	t.add(name, "time to give up (ms)", "%.2f", &took)
	t.add(name, "attempts received by the server", "%.0f", &attempts)
}
