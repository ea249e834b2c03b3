// Tests of the per-host state (hosts.go): the host configuration's
// defaults, the retry budget and the breaker state it gives, the host table
// (its entries, bound, fingerprints, marks and lookup), and the budget
// through a Transport. breaker_test.go has the probes, cooldown_test.go the
// cooldown, hosts_evict_test.go what the table keeps, hosts_bench_test.go
// its costs.

package neuracraft

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestTransportBudget(t *testing.T) {
	run := func(t *testing.T, tr *Transport, calls int) (attempts, ok int) {
		for range calls {
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			if err == nil {
				ok++
				resp.Body.Close()
			}
		}
		return tr.Base.(*scriptBase).attempts(), ok
	}
	t.Run("outage", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500)}}}
			attempts, ok := run(t, tr, 200)
			assert.Zero(t, ok)
			assert.Equal(t, 204, attempts, "5 for the first call, then one each")
		})
	})
	t.Run("outage without a budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500)}}, DisableBudget: true}
			attempts, _ := run(t, tr, 200)
			assert.Equal(t, 1000, attempts)
		})
	})
	t.Run("a few percent of failures", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var steps []step
			for i := range 2000 {
				if i%20 == 7 { // 5% of attempts fail
					steps = append(steps, answer(503))
				} else {
					steps = append(steps, answer(200))
				}
			}
			tr := &Transport{Base: &scriptBase{steps: steps}}
			_, ok := run(t, tr, 1000)
			assert.Equal(t, 1000, ok)
		})
	})
	t.Run("per host", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500)}}}
			run(t, tr, 20)
			other := newReq(t, context.Background(), "GET", "")
			other.URL.Host = "self-hosted.example"
			_, err := tr.RoundTrip(other)
			require.Error(t, err)
			assert.Equal(t, 5+19+5, tr.Base.(*scriptBase).attempts())
		})
	})
	t.Run("honoured rate limits do not spend it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var steps []step
			for range 10 {
				steps = append(steps, answer(429, "Retry-After", "1"))
			}
			base := &scriptBase{steps: append(steps, answer(200))}
			tr := &Transport{Base: base, DisableCooldown: true} // so that all ten meet a 429
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
					if assert.NoError(t, err) {
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			assert.Equal(t, 20, base.attempts())
		})
	})
	t.Run("a denied retry returns the real error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500, "X-Request-ID", "req_9")}}}
			run(t, tr, 5)
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "req_9", apiErr.RequestID)
			assert.Equal(t, 1, apiErr.Attempts)
		})
	})
}

func TestTransportHostsBounded(t *testing.T) {
	tr := &Transport{}
	h := tr.tableForUpdate()
	for i := range maxHosts + 10 {
		addFailing(h, fmt.Sprintf("h%d.example", i), time.Now())
	}
	assert.Equal(t, maxHosts, h.len(), "past maxHosts, the oldest hosts are dropped")
}
