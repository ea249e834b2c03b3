// Tests of what the host table keeps (hosts.go): an entry with something
// to keep (a cooldown pending, a call holding it) is never dropped,
// whatever the number of other hosts in trouble; the table's bound is then
// maxHosts plus its live entries; and a call never holds a state that the
// table has dropped.

package neuracraft

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// coolingBase answers the first request to cool.example 429 with a
// Retry-After of 10 s and every later one 200; every other host answers
// 503 without a Retry-After. It records what reached cool.example, by
// request ID and time since start.
type coolingBase struct {
	start time.Time

	mu     sync.Mutex
	cooled bool
	sent   []string
}

func (b *coolingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "cool.example" {
		return failingBase(req)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, fmt.Sprintf("%s@%v", req.Header.Get("X-Request-ID"), time.Since(b.start)))
	if !b.cooled {
		b.cooled = true
		const body = `{"error":{"code":"rate_limited","message":"slow down"}}`
		return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"10"}}, Request: req,
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

func (b *coolingBase) log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sent...)
}

// TestCoolingHostIsNotEvicted: after a 429 with Retry-After: 10 and one
// call held, 1,024 other hosts failing once each do not push the cooling
// host out of the table, and a fresh call at t=1 s queues behind the held
// one instead of being sent at once.
func TestCoolingHostIsNotEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &coolingBase{start: time.Now()}
		tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}, rand: zero}
		get := func(host, id string) error {
			req, err := http.NewRequest("GET", "https://"+host+"/v1/pipelines", nil)
			require.NoError(t, err)
			req.Header.Set("X-Request-ID", id)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		require.ErrorIs(t, get("cool.example", "first"), ErrRateLimited, "the 429 starts a 10 s cooldown")

		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Go(func() { errs[0] = get("cool.example", "held") })
		synctest.Wait() // held, until t=10 s

		for i := range maxHosts {
			assert.Error(t, get(fmt.Sprintf("h%d.example", i), "other"))
		}
		assert.NotNil(t, tr.table().lookup("cool.example"), "the cooling host keeps its entry")

		time.Sleep(time.Second)
		wg.Go(func() { errs[1] = get("cool.example", "fresh") })
		wg.Wait()
		assert.NoError(t, errs[0])
		assert.NoError(t, errs[1])
		want := []string{"first@0s", "held@10s", "fresh@10.05s"} // one gap of the host's pace apart
		assert.Empty(t, cmp.Diff(want, base.log()), "what cool.example received, and when")
	})
}

// TestHoldWindow: a call finds its host's state, and before the call can
// hold it, another call's end drops it (settled, held by nobody else).
// The first call does not hold the dropped state: it looks again, finds
// none, and the cooldown its 429 then starts is one the next calls find.
// On a table whose lookup and hold were two steps, the call held the
// dropped state, and the next call was sent at once, during the cooldown.
func TestHoldWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "10"), answer(200)}}
		tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}, rand: zero}
		h := tr.tableForUpdate()
		const host = "api.neuracraft.com"
		other := held(h.holdOrAddAt(host, time.Now())) // another call's, settled
		h.beforeHold = func(s *hostState) {
			h.beforeHold = nil
			require.Same(t, other, s)
			h.releaseAt(s, time.Now()) // the other call ends in the window: s is dropped
		}
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.ErrorIs(t, err, ErrRateLimited)
		assert.False(t, other.tryHold(), "the dropped state is held by nobody, and never again")

		s := h.lookup(host)
		require.NotNil(t, s, "the 429 made a new entry")
		assert.NotSame(t, other, s)
		s.mu.Lock()
		until := s.until
		s.mu.Unlock()
		assert.Equal(t, start.Add(10*time.Second), until, "and its cooldown is in the table")

		time.Sleep(time.Second)
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.NoError(t, err)
		resp.Body.Close()
		log := base.log()
		require.Len(t, log, 2)
		assert.Equal(t, 10*time.Second, log[1].at.Sub(start), "the next call waits for the end of the cooldown")
	})
}

// TestHostTableBound: however many hosts cool down at once, every one
// keeps its entry, and right after each new entry the table holds at most
// maxHosts entries plus its live ones; once the cooldowns are over, the
// next new host brings it back to maxHosts.
func TestHostTableBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const cooling, failing = 1500, 2500
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if !strings.HasPrefix(req.URL.Host, "cool") {
				return failingBase(req)
			}
			return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"10"}}, Request: req,
				Body: http.NoBody}, nil
		})
		tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}, rand: zero}
		get := func(host string) {
			req, err := http.NewRequest("GET", "https://"+host+"/v1/pipelines", nil)
			require.NoError(t, err)
			req.Header.Set("X-Request-ID", "r")
			_, err = tr.RoundTrip(req)
			require.Error(t, err)
		}
		for i := range cooling {
			get(fmt.Sprintf("cool%d.example", i))
		}
		h := tr.table()
		assert.Equal(t, cooling, h.len(), "every cooling host is kept, past maxHosts")
		for i := range failing {
			get(fmt.Sprintf("h%d.example", i))
			require.LessOrEqual(t, h.len(), maxHosts+cooling, "after %d failing hosts", i+1)
		}
		assert.Equal(t, cooling+1, h.len(), "the cooling hosts, and the newest failing one")
		for i := range cooling {
			require.NotNil(t, h.lookup(fmt.Sprintf("cool%d.example", i)), "cooling host %d", i)
		}

		time.Sleep(10 * time.Second) // every cooldown ends
		get("last.example")
		assert.Equal(t, maxHosts, h.len(), "nothing live: back to maxHosts")
		assert.NotNil(t, h.lookup("last.example"))
	})
}

// TestHostTableForgetsByLastFailure: past maxHosts, the table forgets the
// host whose last failure is the oldest, not its first: a host that keeps
// failing, its breaker open, outlives hosts that failed once since its
// first failure, and the next call to it still finds its breaker open.
func TestHostTableForgetsByLastFailure(t *testing.T) {
	tr := &Transport{Base: failingBase, Retry: RetryPolicy{MaxAttempts: 1}}
	get := func(host string) {
		req, err := http.NewRequest("GET", "https://"+host+"/v1/pipelines", nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
	}
	get("hot.example") // its first failure: the oldest entry
	for i := range maxHosts - 2 {
		get(fmt.Sprintf("h%d.example", i)) // failing once each
	}
	for range 5 {
		get("hot.example") // failing again: its last failure is the newest
	}
	s := tr.table().lookup("hot.example")
	require.NotNil(t, s)
	s.mu.Lock()
	open := s.open()
	s.mu.Unlock()
	require.True(t, open, "hot.example's breaker is open")

	get("new1.example") // the table is full: the next host in trouble makes it trim its oldest
	get("new2.example")
	h := tr.table()
	assert.Equal(t, maxHosts, h.len())
	assert.NotNil(t, h.lookup("hot.example"), "the host whose last failure is among the newest is kept")
	assert.Nil(t, h.lookup("h0.example"), "the host whose last failure is the oldest is forgotten")
	assert.NotNil(t, h.lookup("h1.example"), "only that one")
}
