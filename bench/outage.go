// This file holds scenario 2, the outage: how much extra load each client
// puts on a server that answers 503 to everything (amplification), and
// how many of the calls in flight when the server comes back succeed
// (recovery). It runs in two shapes: many calls at once, and one call at
// a time through repeated outages (where a circuit breaker's half-open
// probe behaves differently).

package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// errorBody is the small JSON error envelope that failing servers send.
func errorBody(status int, code, msg string) string {
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q,"status":%d}}`+"\n", code, msg, status)
}

// outageServer answers 503 (no Retry-After) while down and 200 while up.
// It starts down. The first byte of a call's ID (the callHeader) names
// the phase the call belongs to; the server counts its 503s by it.
type outageServer struct {
	*httptest.Server

	mu        sync.Mutex
	up        bool
	failed    map[byte]int // 503s sent, by the first byte of the call ID
	upAt      time.Time
	recovered chan struct{} // closed when the server comes up
	// epoch counts the outages (goDown calls), so that a trigger that
	// fires late recovers only the outage it was set for.
	epoch int
	// onFail, when not nil, is called after each 503 is sent; when it
	// returns true the server recovers, if still in the same outage.
	onFail func(id string) bool
}

func newOutageServer() *outageServer {
	s := &outageServer{failed: make(map[byte]int), recovered: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *outageServer) serve(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(callHeader)
	s.mu.Lock()
	up, onFail, epoch := s.up, s.onFail, s.epoch
	if !up {
		var phase byte
		if id != "" {
			phase = id[0]
		}
		s.failed[phase]++
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if up {
		_, _ = w.Write(okBody)
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(errorBody(503, "service_unavailable", "The service is temporarily unavailable.")))
	if onFail != nil {
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // the 503 reaches the client before onFail acts
		}
		if onFail(id) {
			s.recoverFrom(epoch)
		}
	}
}

// goDown starts a new outage: the server answers 503 again, with onFail
// (which may be nil) called after each 503.
func (s *outageServer) goDown(onFail func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up {
		s.up, s.recovered = false, make(chan struct{})
	}
	s.epoch++
	s.onFail = onFail
}

// recoverNow ends the current outage: the server answers 200. It is
// idempotent.
func (s *outageServer) recoverNow() {
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	s.recoverFrom(epoch)
}

// recoverFrom ends outage epoch, unless another one has started since.
func (s *outageServer) recoverFrom(epoch int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up || s.epoch != epoch {
		return
	}
	s.up, s.upAt, s.onFail = true, time.Now(), nil
	close(s.recovered)
}

// state returns whether the server is up, since when, and the channel
// closed when it next comes up.
func (s *outageServer) state() (up bool, upAt time.Time, recovered <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up, s.upAt, s.recovered
}

// failures is the number of 503s sent to calls whose ID starts with
// phase.
func (s *outageServer) failures(phase byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed[phase]
}

// recoverGrace bounds how long the server of the concurrent shape waits
// for the first attempt of every in-flight call before it recovers
// anyway: a client may hold calls back unsent while a host is failing.
const recoverGrace = time.Second

// outageResult is one run of the concurrent shape for one client.
type outageResult struct {
	attemptsPerCall float64       // during the outage
	outageWall      time.Duration // how long the outage calls took
	inflightOK      int           // calls started during the outage that succeeded
	firstInflightOK time.Duration // recovery to the first in-flight success; -1 for none
	freshOK         time.Duration // recovery to the success of a call made after it; -1 for none
}

// runOutage runs the concurrent shape of scenario 2 once for a fresh
// client of kind k.
func runOutage(k kind, cfg *config) outageResult {
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
	res.attemptsPerCall = float64(srv.failures('a')) / float64(cfg.outageCalls)

	// Phase B: cfg.inflightCalls calls start during the outage. The
	// server recovers once each of them has had its first attempt
	// refused (or has returned), or recoverGrace after they started. A
	// client that waits and retries sees them succeed.
	var (
		mu      sync.Mutex
		pending = make(map[string]bool, cfg.inflightCalls)
		okCount int
		firstOK time.Time
	)
	for i := range cfg.inflightCalls {
		pending[fmt.Sprintf("b%d", i)] = true
	}
	// settle marks call id as refused once or returned, and reports
	// whether it was the last one pending.
	settle := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		last := pending[id] && len(pending) == 1
		delete(pending, id)
		return last
	}
	srv.goDown(settle)
	_, _, recovered := srv.state()
	for i := range cfg.inflightCalls {
		wg.Go(func() {
			id := fmt.Sprintf("b%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.callTimeout)
			defer cancel()
			status, err := c.do(ctx, &call{method: http.MethodGet, url: url, id: id})
			now := time.Now()
			mu.Lock()
			if ok(status, err) {
				okCount++
				if firstOK.IsZero() || now.Before(firstOK) {
					firstOK = now
				}
			}
			mu.Unlock()
			if settle(id) {
				srv.recoverNow()
			}
		})
	}
	// A call made right after the recovery, retried by the caller every
	// 10 ms (up to callTimeout) until it succeeds.
	wg.Go(func() {
		select {
		case <-recovered:
		case <-time.After(recoverGrace):
			srv.recoverNow()
		}
		_, upAt, _ := srv.state()
		deadline := time.Now().Add(cfg.callTimeout)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			status, err := c.do(ctx, &call{method: http.MethodGet, url: url, id: "fresh"})
			cancel()
			if ok(status, err) {
				res.freshOK = time.Since(upAt)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	wg.Wait()
	_, upAt, _ := srv.state()
	res.inflightOK = okCount
	if !firstOK.IsZero() {
		res.firstInflightOK = firstOK.Sub(upAt)
	}
	return res
}

// seqResult is one run of the sequential shape for one client.
type seqResult struct {
	attemptsPerCall float64       // during the outages
	meanOutageCall  time.Duration // how long an outage call took, on average
	recoveringOK    int           // recovering calls that succeeded
	afterOK         int           // calls made just after a recovery that succeeded
}

// runSequential runs the sequential shape of scenario 2 once for a fresh
// client of kind k: cfg.seqCycles times, the server goes down for
// cfg.seqCalls calls made one after another, then comes back right after
// refusing the first attempt of the next call (the recovering call); one
// more call follows. The client and its per-host state live through all
// the cycles, as in a long-running service. Every call has a
// cfg.seqTimeout deadline.
func runSequential(k kind, cfg *config) seqResult {
	srv := newOutageServer()
	defer srv.Close()
	c := newClient(k)
	defer c.close()
	url := srv.URL + "/v1/pipelines"
	one := func(id string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.seqTimeout)
		defer cancel()
		return ok(c.do(ctx, &call{method: http.MethodGet, url: url, id: id}))
	}
	var res seqResult
	var outageTime time.Duration
	for cycle := range cfg.seqCycles {
		srv.goDown(nil)
		for i := range cfg.seqCalls {
			start := time.Now()
			one(fmt.Sprintf("s%d.%d", cycle, i))
			outageTime += time.Since(start)
		}
		rid := fmt.Sprintf("r%d", cycle)
		srv.goDown(func(id string) bool { return id == rid })
		if one(rid) {
			res.recoveringOK++
		}
		srv.recoverNow() // if the client never sent rid
		if one(fmt.Sprintf("h%d", cycle)) {
			res.afterOK++
		}
	}
	n := cfg.seqCycles * cfg.seqCalls
	res.attemptsPerCall = float64(srv.failures('s')) / float64(n)
	res.meanOutageCall = outageTime / time.Duration(n)
	return res
}

// scenarioOutage runs both shapes of scenario 2 cfg.reps times per
// client: the concurrent shape one client after another, interleaved; the
// sequential shape for all clients at once, each against its own server
// (one call at a time each, so they hardly load the machine).
func scenarioOutage(t *table, cfg *config) {
	var apc, wall, inflight, firstOK, fresh series
	var sApc, sTime, sRecover, sAfter series
	for rep := range cfg.reps {
		for _, k := range order(rep) {
			r := runOutage(k, cfg)
			apc.add(k, r.attemptsPerCall)
			wall.add(k, r.outageWall.Seconds())
			inflight.add(k, float64(r.inflightOK))
			firstOK.add(k, durOrNaN(r.firstInflightOK))
			fresh.add(k, durOrNaN(r.freshOK))
			cfg.progress("scenario 2: %s repetition %d, %d at once: %.3f attempts/call, in-flight ok %d/%d",
				k, rep+1, cfg.outageConc, r.attemptsPerCall, r.inflightOK, cfg.inflightCalls)
		}
		var seq [numKinds]seqResult
		var wg sync.WaitGroup
		for _, k := range kinds {
			wg.Go(func() { seq[k] = runSequential(k, cfg) })
		}
		wg.Wait()
		for _, k := range kinds {
			r := seq[k]
			sApc.add(k, r.attemptsPerCall)
			sTime.add(k, ms(r.meanOutageCall))
			sRecover.add(k, float64(r.recoveringOK))
			sAfter.add(k, float64(r.afterOK))
			cfg.progress("scenario 2: %s repetition %d, one at a time: %.3f attempts/call, recovering ok %d/%d",
				k, rep+1, r.attemptsPerCall, r.recoveringOK, cfg.seqCycles)
		}
	}
	name := fmt.Sprintf("2a. Outage, %d calls %d at a time, then %d in flight at recovery",
		cfg.outageCalls, cfg.outageConc, cfg.inflightCalls)
	t.add(name, "server attempts per call during the outage", "%.3f", &apc)
	t.add(name, "outage calls wall time (s)", "%.2f", &wall)
	t.add(name, fmt.Sprintf("in-flight calls that succeed (of %d)", cfg.inflightCalls), "%.0f", &inflight)
	t.add(name, "recovery → first in-flight success (ms)", "%.1f", &firstOK)
	t.add(name, "recovery → success of a new call (ms)", "%.2f", &fresh)
	name = fmt.Sprintf("2b. Outage, one call at a time: %d × (%d failing calls, 1 in flight at recovery), %s deadline",
		cfg.seqCycles, cfg.seqCalls, cfg.seqTimeout)
	t.add(name, "server attempts per call during the outages", "%.3f", &sApc)
	t.add(name, "mean time of an outage call (ms)", "%.1f", &sTime)
	t.add(name, fmt.Sprintf("in-flight calls that succeed (of %d)", cfg.seqCycles), "%.0f", &sRecover)
	t.add(name, fmt.Sprintf("next calls that succeed (of %d)", cfg.seqCycles), "%.0f", &sAfter)
}

// durOrNaN is d in milliseconds, NaN when d is negative (did not happen).
func durOrNaN(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return ms(d)
}
