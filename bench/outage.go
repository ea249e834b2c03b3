// This file holds scenario 2, the outage: how much extra load each client
// puts on a server that answers 503 to everything, and how it fares when
// the server comes back.

package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errorBody is the small JSON error envelope that failing servers send.
func errorBody(status int, code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q,"status":%d}}`+"\n", code, msg, status)
}

// outageServer answers 503 (no Retry-After) until it recovers, then 200.
// It recovers by itself once it has seen the first attempt of armed
// distinct calls whose ID starts with "b" (the calls in flight at
// recovery), or when recoverNow is called.
type outageServer struct {
	*httptest.Server
	attempts  atomic.Int64 // attempts answered 503
	successes atomic.Int64 // attempts answered 200

	mu        sync.Mutex
	up        bool
	armed     int                 // in-flight calls to wait for before recovering
	seen      map[string]struct{} // their IDs
	recovered chan struct{}       // closed on recovery
	upAt      time.Time
}

func newOutageServer() *outageServer {
	s := &outageServer{seen: make(map[string]struct{}), recovered: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *outageServer) serve(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(callHeader)
	s.mu.Lock()
	up := s.up
	recoverAfter := false
	if !up && s.armed > 0 && strings.HasPrefix(id, "b") {
		s.seen[id] = struct{}{}
		recoverAfter = len(s.seen) >= s.armed
	}
	s.mu.Unlock()
	if up {
		s.successes.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(okBody)
		return
	}
	s.attempts.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(errorBody(503, "service_unavailable", "The service is temporarily unavailable.")))
	if recoverAfter {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		s.recoverNow()
	}
}

// arm makes the server recover once it has answered the first attempt of
// n distinct calls with IDs starting with "b".
func (s *outageServer) arm(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = n
}

// recoverNow switches the server to 200; it is idempotent.
func (s *outageServer) recoverNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		return
	}
	s.up, s.upAt = true, time.Now()
	close(s.recovered)
}

// outageResult is one run of scenario 2 for one client.
type outageResult struct {
	attemptsPerCall float64       // during the outage
	outageWall      time.Duration // how long the outage calls took
	inflightOK      int           // in-flight calls that succeeded after recovery
	firstInflightOK time.Duration // recovery to the first in-flight success; -1 for none
	freshOK         time.Duration // recovery to the success of a call made after it; -1 for none
}

// runOutage runs scenario 2 once for a fresh client of kind k.
func runOutage(k kind, cfg *config) (outageResult, error) {
	srv := newOutageServer()
	defer srv.Close()
	c := newClient(k)
	defer c.close()
	url := srv.URL + "/v1/pipelines"
	res := outageResult{firstInflightOK: -1, freshOK: -1}

	// Phase A: cfg.outageCalls calls during the outage, by
	// cfg.outageConc goroutines. Every one fails, whatever the client.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range cfg.outageConc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.outageCalls) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), cfg.callTimeout)
				_, _ = c.do(ctx, &call{method: http.MethodGet, url: url, id: fmt.Sprintf("a%d", i)})
				cancel()
			}
		})
	}
	wg.Wait()
	res.outageWall = time.Since(start)
	res.attemptsPerCall = float64(srv.attempts.Load()) / float64(cfg.outageCalls)

	// Phase B: cfg.inflightCalls calls start during the outage; the
	// server recovers as soon as it has answered the first attempt of
	// each. A client that waits and retries sees them succeed.
	srv.arm(cfg.inflightCalls)
	var mu sync.Mutex
	var okCount int
	var firstOK time.Time
	for i := range cfg.inflightCalls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.callTimeout)
			defer cancel()
			status, err := c.do(ctx, &call{method: http.MethodGet, url: url, id: fmt.Sprintf("b%d", i)})
			if ok(status, err) {
				now := time.Now()
				mu.Lock()
				okCount++
				if firstOK.IsZero() || now.Before(firstOK) {
					firstOK = now
				}
				mu.Unlock()
			}
		})
	}
	// A call made right after the recovery, retried by the caller every
	// 10 ms (up to callTimeout) until it succeeds.
	wg.Go(func() {
		select {
		case <-srv.recovered:
		case <-time.After(cfg.callTimeout):
			srv.recoverNow() // some client never sent all its calls
		}
		deadline := time.Now().Add(cfg.callTimeout)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			status, err := c.do(ctx, &call{method: http.MethodGet, url: url, id: "fresh"})
			cancel()
			if ok(status, err) {
				mu.Lock()
				res.freshOK = time.Since(srv.upAt)
				mu.Unlock()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	wg.Wait()
	res.inflightOK = okCount
	if !firstOK.IsZero() {
		res.firstInflightOK = firstOK.Sub(srv.upAt)
	}
	return res, nil
}

// scenarioOutage runs scenario 2 cfg.reps times per client, interleaved.
func scenarioOutage(t *table, cfg *config) ([]target, error) {
	var apc, wall, inflight, firstOK, fresh series
	for rep := range cfg.reps {
		for _, k := range order(rep) {
			r, err := runOutage(k, cfg)
			if err != nil {
				return nil, err
			}
			apc.add(k, r.attemptsPerCall)
			wall.add(k, r.outageWall.Seconds())
			inflight.add(k, float64(r.inflightOK))
			firstOK.add(k, durOrNaN(r.firstInflightOK))
			fresh.add(k, durOrNaN(r.freshOK))
			cfg.progress("scenario 2: %s repetition %d: %.3f attempts/call, in-flight ok %d/%d",
				k, rep+1, r.attemptsPerCall, r.inflightOK, cfg.inflightCalls)
		}
	}
	name := fmt.Sprintf("2. Outage (%d calls, %d at a time)", cfg.outageCalls, cfg.outageConc)
	t.add(name, "server attempts per call during outage", "%.3f", true, &apc)
	t.add(name, "outage calls wall time (s)", "%.2f", true, &wall)
	t.add(name, fmt.Sprintf("in-flight calls that succeed after recovery (of %d)", cfg.inflightCalls), "%.0f", false, &inflight)
	t.add(name, "recovery → first in-flight success (ms)", "%.1f", false, &firstOK)
	t.add(name, "recovery → success of a new call (ms)", "%.2f", false, &fresh)
	m := median(apc[ours])
	return []target{{
		name:     "2. ≤ 1.15 server attempts per call during the outage",
		measured: fmt.Sprintf("%.3f (retryablehttp %.3f, bare %.3f)", m, median(apc[retryable]), median(apc[bare])),
		met:      m <= 1.15,
	}}, nil
}

// durOrNaN is d in milliseconds, NaN when d is negative (did not happen).
func durOrNaN(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return ms(d)
}
