package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errReset error = syscall.ECONNRESET

// t0 is the instant the explicit-time tests count from.
var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// defaultHostConfig is the hostConfig of a Transport with the defaults.
func defaultHostConfig() *hostConfig {
	return &(&Transport{}).tableForUpdate().cfg
}

func TestHostConfigDefaults(t *testing.T) {
	assert.Equal(t, hostConfig{maxTokens: 10, refill: 0.1, probeInterval: 500 * time.Millisecond}, *defaultHostConfig(),
		"10 tokens, 0.1 a success, one probe per 500 ms (the documented numbers)")
	tr := &Transport{Retry: RetryPolicy{BaseDelay: 2 * time.Second, MaxDelay: time.Second,
		Budget: RetryBudget{MaxTokens: 4, Refill: 0.5}}}
	assert.Equal(t, hostConfig{maxTokens: 4, refill: 0.5, probeInterval: time.Second}, tr.tableForUpdate().cfg,
		"the probe interval is the first backoff's ceiling: BaseDelay, capped at MaxDelay")
	var ceilings []time.Duration
	for n := 1; n < defaultMaxAttempts; n++ {
		ceilings = append(ceilings, backoffCeiling(0, 0, n))
	}
	assert.Equal(t, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}, ceilings,
		"how long a denied call may wait for a probe before each of its retries")
}

func TestHostBudget(t *testing.T) {
	s := newHostState("h", defaultHostConfig())
	var allowed []bool
	for range 6 {
		allowed = append(allowed, retryAllowed(s.failed(true)))
	}
	assert.Equal(t, []bool{true, true, true, true, false, false}, allowed,
		"from a full bucket of 10, four failures are retried; at 5 tokens (half) retries stop")
	assert.Equal(t, 4.0, s.tokens)

	assert.False(t, retryAllowed(s.failed(false)), "an uncharged failure takes no token, and the breaker stays open")
	assert.Equal(t, 4.0, s.tokens)

	s.answered()
	assert.Equal(t, 10.0, s.tokens, "one answer while the breaker is open fills the bucket")
	assert.True(t, retryAllowed(s.failed(true)), "and retries are made again")

	s.answered()
	assert.InDelta(t, 9.1, s.tokens, 1e-9, "while closed, an answer puts back 0.1")
	for range 20 {
		s.answered()
	}
	assert.Equal(t, 10.0, s.tokens, "never more than MaxTokens")
	for range 20 {
		s.failed(true)
	}
	assert.Equal(t, 0.0, s.tokens, "never fewer than none")
}

// retryAllowed is hostState.failed's first result.
func retryAllowed(allowed, _ bool) bool { return allowed }

// TestBreakerTransitions: failed reports the failure that opens the
// breaker, and only that one; answered the answer that closes it.
func TestBreakerTransitions(t *testing.T) {
	s := newHostState("h", defaultHostConfig())
	var opened []bool
	for range 6 {
		_, o := s.failed(true)
		opened = append(opened, o)
	}
	assert.Equal(t, []bool{false, false, false, false, true, false}, opened, "the fifth failure opens it")
	assert.True(t, s.answered(), "an answer closes it")
	assert.False(t, s.answered(), "and the next finds it closed")
	_, o := s.failed(false)
	assert.False(t, o, "an uncharged failure opens nothing")
}

func TestHostBreakerAt(t *testing.T) {
	newOpen := func(calls int32) *hostState {
		s := newHostState("h", defaultHostConfig())
		s.tokens = 0
		s.calls.Store(calls)
		return s
	}
	const own, ceiling = 200 * time.Millisecond, 500 * time.Millisecond
	ms := time.Millisecond
	stop := stopWith(stopBudget)

	t.Run("a call alone stops", func(t *testing.T) {
		s := newOpen(1)
		assert.Equal(t, stop, s.awaitProbeAt(at(0), own, ceiling, time.Time{}))
	})
	t.Run("closed meanwhile", func(t *testing.T) {
		s := newOpen(2)
		s.tokens = 10
		assert.Equal(t, retryDecision{step: retryLater}, s.awaitProbeAt(at(0), own, ceiling, time.Time{}), "retry at once")
	})
	t.Run("one sender at its own backoff, the others wait, one probe per interval", func(t *testing.T) {
		s := newOpen(3)
		d := s.awaitProbeAt(at(0), own, ceiling, time.Time{})
		p := d.probe
		require.NotNil(t, p)
		assert.Equal(t, retryDecision{step: retryLater, delay: own, probe: p}, d, "the call sends the probe after its own backoff")
		assert.Equal(t, at(own), p.at)

		w := s.awaitProbeAt(at(10*ms), 0, ceiling, time.Time{})
		assert.Equal(t, retryDecision{step: waitForProbe, delay: own - 10*ms, probe: p}, w, "a second call waits for the same probe")

		s.probeFailed(p)
		assertClosed(t, p.done)
		assert.Equal(t, probeFailed, p.outcome)

		next := s.awaitProbeAt(at(own+5*ms), 0, ceiling, time.Time{})
		require.NotNil(t, next.probe)
		assert.Equal(t, retryDecision{step: retryLater, delay: 495 * ms, probe: next.probe}, next)
		assert.Equal(t, at(own+500*ms), next.probe.at, "500 ms after the last probe")

		s.answered()
		assertClosed(t, next.probe.done)
		assert.Equal(t, probeSucceeded, next.probe.outcome, "any answer serves the waiters")
		assert.Equal(t, 10.0, s.tokens)
	})
	t.Run("a probe due after the wait allowed is not waited for", func(t *testing.T) {
		s := newOpen(3)
		p := s.awaitProbeAt(at(0), 400*ms, ceiling, time.Time{}).probe
		require.NotNil(t, p)
		assert.Equal(t, stop, s.awaitProbeAt(at(0), 0, 300*ms, time.Time{}), "due at 400 ms, the call's backoff ceiling is 300 ms")
		assert.Equal(t, stop, s.awaitProbeAt(at(0), 0, ceiling, at(300*ms)), "due after the deadline")
		assert.Equal(t, retryDecision{step: waitForProbe, delay: 400 * ms, probe: p},
			s.awaitProbeAt(at(0), 0, ceiling, at(400*ms)), "due at the deadline")
		assert.Equal(t, retryDecision{step: waitForProbe, probe: p},
			s.awaitProbeAt(at(450*ms), 0, ceiling, time.Time{}), "due already (its sender is late): no wait")
	})
	t.Run("a sender after the deadline is not made", func(t *testing.T) {
		s := newOpen(2)
		assert.Equal(t, stop, s.awaitProbeAt(at(0), own, ceiling, at(100*ms)))
	})
	t.Run("an abandoned probe frees its slot", func(t *testing.T) {
		s := newOpen(2)
		p := s.awaitProbeAt(at(0), own, ceiling, time.Time{}).probe
		require.NotNil(t, p)
		s.abandonProbe(p)
		assertClosed(t, p.done)
		assert.Equal(t, probeAbandoned, p.outcome)
		q := s.awaitProbeAt(at(ms), 0, ceiling, time.Time{})
		require.NotNil(t, q.probe)
		assert.Equal(t, retryDecision{step: retryLater, probe: q.probe}, q, "no interval after a probe never sent")
		assert.Equal(t, at(ms), q.probe.at)
		s.probeFailed(p) // late: changes nothing
		assert.Equal(t, probeAbandoned, p.outcome)
	})
}

func assertClosed(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	default:
		t.Error("channel not closed")
	}
}

// held is holdOrAddAt's state, for the tests that look at nothing else.
func held(s *hostState, _ []lostState) *hostState { return s }

// addFailing gives host an entry in h that stays after its call ends: a
// call holds it, fails once (a token taken) and ends, at now.
func addFailing(h *hostTable, host string, now time.Time) *hostState {
	s := held(h.holdOrAddAt(host, now))
	s.failed(true)
	h.releaseAt(s, now)
	return s
}

func TestHostTable(t *testing.T) {
	h := (&Transport{}).tableForUpdate()
	assert.Nil(t, h.lookup("a.example"))
	assert.Nil(t, h.hold("a.example", h.lookup("a.example")))
	a := held(h.holdOrAddAt("a.example", at(0)))
	assert.Same(t, a, held(h.holdOrAddAt("a.example", at(0))))
	assert.Same(t, a, h.hold("a.example", h.lookup("a.example")))
	assert.Equal(t, int32(3), a.calls.Load(), "held by three calls")
	assert.Nil(t, h.lookup("b.example"))
	for range 3 {
		h.releaseAt(a, at(0))
	}
	assert.Nil(t, h.lookup("a.example"), "settled and released: dropped")
	assert.False(t, a.tryHold(), "a dropped state cannot be held again")

	a = addFailing(h, "a.example", at(0))
	for i := range maxHosts - 1 {
		addFailing(h, fmt.Sprintf("h%d.example", i), at(0))
	}
	assert.Equal(t, maxHosts, h.len())
	h.releaseAt(held(h.holdOrAddAt("a.example", at(0))), at(0)) // a is the newest again: h0 is the oldest
	addFailing(h, "new.example", at(0))
	assert.Equal(t, maxHosts, h.len())
	assert.Nil(t, h.lookup("h0.example"), "the oldest entry is dropped")
	assert.Same(t, a, h.lookup("a.example"))

	h.forgetAt(a, at(0))
	assert.Same(t, a, h.lookup("a.example"), "not settled: kept")
	for range 10 { // 0.1 each: full again after exactly 10
		a.answered()
	}
	assert.Equal(t, 10.0, a.tokens)
	require.Same(t, a, h.hold("a.example", h.lookup("a.example")))
	h.forgetAt(a, at(0))
	assert.Same(t, a, h.lookup("a.example"), "a call in flight: kept")
	h.releaseAt(a, at(0))
	assert.Nil(t, h.lookup("a.example"), "settled: dropped when its last call ends")
	assert.Equal(t, maxHosts-1, h.len())

	// Dropping every entry clears every mark.
	h.mu.Lock()
	for h.oldest != nil {
		s := h.oldest
		h.unlink(s)
		h.drop(s)
	}
	h.mu.Unlock()
	assert.Zero(t, h.len())
	for i := range h.marks {
		require.Zero(t, h.marks[i].Load(), "mark %d", i)
	}
}

// TestHostWaiterKeepsItsEntry: calls waiting for a probe keep their
// host's entry, however many other hosts fail meanwhile, and the probe's
// answer wakes them.
func TestHostWaiterKeepsItsEntry(t *testing.T) {
	h := (&Transport{}).tableForUpdate()
	old := held(h.holdOrAddAt("a.example", at(0)))
	require.Same(t, old, h.hold("a.example", h.lookup("a.example")))
	old.tokens = 0
	p := old.awaitProbeAt(at(0), 0, time.Second, time.Time{})
	require.Equal(t, retryLater, p.step, "the first sends the probe")
	w := old.awaitProbeAt(at(0), 0, time.Second, time.Time{})
	require.Equal(t, waitForProbe, w.step, "the second waits for it")
	require.Same(t, p.probe, w.probe)
	for i := range maxHosts {
		addFailing(h, fmt.Sprintf("h%d.example", i), at(0))
	}
	assert.Same(t, old, h.lookup("a.example"), "kept")
	assert.Equal(t, maxHosts, h.len(), "the oldest of the others made room")
	old.answered()
	assertClosed(t, w.probe.done)
	assert.Equal(t, probeSucceeded, w.probe.outcome)
}

// TestStopReasons: the error of a retryable failure that is not retried
// says why, as the last note of its line; errors.Is and errors.As see it
// as before.
func TestStopReasons(t *testing.T) {
	const path = "neuracraft: GET /v1/pipelines/pipe_1: "
	tests := []struct {
		name  string
		steps []step
		tr    func(base http.RoundTripper) *Transport
		req   func(t *testing.T) *http.Request
		want  string
	}{
		{"attempts exhausted", []step{answer(503, "X-Request-ID", "r")},
			func(b http.RoundTripper) *Transport { return &Transport{Base: b, Retry: RetryPolicy{MaxAttempts: 2}} }, nil,
			path + "503 Service Unavailable: scripted (request r, 2 attempts, not retried: attempts exhausted)"},
		{"Retry-After beyond MaxRetryAfter", []step{answer(429, "X-Request-ID", "r", "Retry-After", "120")},
			func(b http.RoundTripper) *Transport { return &Transport{Base: b} }, nil,
			path + "429 Too Many Requests: scripted (request r, not retried: Retry-After beyond MaxRetryAfter)"},
		{"body not replayable", []step{answer(503, "X-Request-ID", "r")},
			func(b http.RoundTripper) *Transport { return &Transport{Base: b} },
			func(t *testing.T) *http.Request {
				req := newReq(t, context.Background(), "PUT", "x")
				req.GetBody = nil
				return req
			},
			"neuracraft: PUT /v1/pipelines/pipe_1: 503 Service Unavailable: scripted (request r, not retried: body not replayable)"},
		{"deadline", []step{answer(503, "X-Request-ID", "r", "Retry-After", "5")},
			func(b http.RoundTripper) *Transport { return &Transport{Base: b, DisableCooldown: true} },
			func(t *testing.T) *http.Request {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				t.Cleanup(cancel)
				return newReq(t, ctx, "GET", "")
			},
			path + "503 Service Unavailable: scripted (request r, not retried: deadline too close)"},
		{"retry budget", []step{answer(500, "X-Request-ID", "r")},
			func(b http.RoundTripper) *Transport {
				return &Transport{Base: b, Retry: RetryPolicy{Budget: RetryBudget{MaxTokens: 1}}}
			}, nil,
			path + "500 Internal Server Error: scripted (request r, not retried: retry budget exhausted)"},
		{"network error, retry budget", []step{{err: errReset}},
			func(b http.RoundTripper) *Transport {
				return &Transport{Base: b, Retry: RetryPolicy{Budget: RetryBudget{MaxTokens: 1}}}
			},
			func(t *testing.T) *http.Request {
				req := newReq(t, context.Background(), "GET", "")
				req.Header.Set("X-Request-ID", "r")
				return req
			},
			path + errReset.Error() + " (request r, attempt 1, not retried: retry budget exhausted)"},
		{"retryable, but not for the method", []step{answer(500, "X-Request-ID", "r")},
			func(b http.RoundTripper) *Transport { return &Transport{Base: b} },
			func(t *testing.T) *http.Request { return newReq(t, context.Background(), "POST", "") },
			"neuracraft: POST /v1/pipelines/pipe_1: 500 Internal Server Error: scripted (request r, not retried: method not idempotent)"},
		{"retryable, but the policy declined", []step{answer(503, "X-Request-ID", "r")},
			func(b http.RoundTripper) *Transport {
				return &Transport{Base: b, Retry: RetryPolicy{ShouldRetry: func(*http.Request, error) bool { return false }}}
			},
			nil,
			path + "503 Service Unavailable: scripted (request r, not retried: ShouldRetry declined)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &scriptBase{steps: tc.steps}
				req := newReq(t, context.Background(), "GET", "")
				if tc.req != nil {
					req = tc.req(t)
				}
				_, err := tc.tr(base).RoundTrip(req)
				require.Error(t, err)
				assert.Equal(t, tc.want, err.Error())
				assert.True(t, IsRetryable(err), "matching is as before")
				if tc.steps[0].err == nil {
					var apiErr *APIError
					require.ErrorAs(t, err, &apiErr)
					assert.ErrorIs(t, err, Code(apiErr.StatusCode))
				} else {
					assert.ErrorIs(t, err, errReset)
				}
			})
		})
	}
}

// TestRewindFailureEndsCall: when GetBody fails, the call ends there with
// the last failure, and neither the budget nor the breaker sees a failure
// that the server did not send.
func TestRewindFailureEndsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503), answer(200)}}
		req := newReq(t, context.Background(), "POST", "x")
		rewinds := 0
		req.GetBody = func() (io.ReadCloser, error) { rewinds++; return nil, errors.New("gone") }
		tr := &Transport{Base: base}
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.Equal(t, 1, rewinds)
		assert.Equal(t, 1, base.attempts())
		s := tr.table().lookup("api.neuracraft.com")
		require.NotNil(t, s)
		assert.Equal(t, 9.0, s.tokens, "one token, for the one 503")
	})
}

// TestFingerprintSpreads: the cheap fingerprint of hostTable spreads
// hosts that differ only in a digit, a port or a suffix over the slots
// (a collision costs speed, not correctness), and reads short names too.
func TestFingerprintSpreads(t *testing.T) {
	t.Parallel()
	for _, salt := range []uint64{0, 0x5eed} {
		slots := map[uint64]bool{}
		for i := range maxHosts {
			for _, host := range []string{fmt.Sprintf("h%d.example", i), fmt.Sprintf("api.neuracraft.com:%d", 8000+i)} {
				slots[fingerprint(host, salt)%markSlots] = true
			}
		}
		// 2048 hosts in 4096 slots: about 1613 distinct slots if hashed at random.
		assert.Greater(t, len(slots), 1500, "salt %#x", salt)
		assert.NotEqual(t, fingerprint("a", salt), fingerprint("b", salt))
		assert.NotEqual(t, fingerprint("", salt), fingerprint("a", salt))
	}
}

func TestMarkSlots(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 4*maxHosts, markSlots, "four slots per entry")
	for _, host := range []string{"", "a", "api.neuracraft.com", strings.Repeat("x", 300)} {
		assert.Less(t, fingerprint(host, ^uint64(0)), uint64(markSlots))
	}
}

// TestHostTableLookupAcrossFew: lookup finds every entry and no other
// host, whether the table lists its few hosts by name (up to fewHosts) or
// marks them by fingerprint (past that), and as it shrinks back.
func TestHostTableLookupAcrossFew(t *testing.T) {
	t.Parallel()
	h := newHostTable(hostConfig{maxTokens: 10, refill: 0.1})
	check := func(n int) {
		t.Helper()
		assert.Equal(t, n <= fewHosts, h.few.Load() != nil, "%d entries", n)
		for i := range n {
			host := fmt.Sprintf("h%d.example", i)
			if s := h.lookup(host); assert.NotNil(t, s, host) {
				assert.Equal(t, host, s.host)
			}
		}
		assert.Nil(t, h.lookup("api.neuracraft.com"))
		assert.Nil(t, h.lookup(fmt.Sprintf("h%d.example", n)))
	}
	check(0)
	for i := range fewHosts + 2 {
		addFailing(h, fmt.Sprintf("h%d.example", i), at(0))
		check(i + 1)
	}
	for i := fewHosts + 1; i >= 0; i-- {
		h.mu.Lock()
		s := h.m[fmt.Sprintf("h%d.example", i)]
		h.unlink(s)
		h.drop(s)
		h.mu.Unlock()
		check(i)
	}
}

// TestNotRetryableHasNoNote: a failure that no retry could help (a 404)
// says nothing about retries.
func TestNotRetryableHasNoNote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(404, "X-Request-ID", "r")}}
		_, err := (&Transport{Base: base}).RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.Error(t, err)
		assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: scripted (request r)", err.Error())
	})
}
