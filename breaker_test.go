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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outageBase is a server, on fake time, that takes rtt to answer and
// answers 503 (no Retry-After) until it recovers, then 200. Once armed
// with n, it recovers when it has answered the first attempt of n
// distinct calls whose request ID starts with "b": the shape of the
// bench's outage scenario.
type outageBase struct {
	rtt time.Duration

	mu       sync.Mutex
	up       bool
	failed   int // attempts answered 503
	answered int // attempts answered 200
	armed    int
	seen     map[string]bool
}

func (o *outageBase) RoundTrip(req *http.Request) (*http.Response, error) {
	time.Sleep(o.rtt)
	id := req.Header.Get("X-Request-ID")
	o.mu.Lock()
	defer o.mu.Unlock()
	status, body := http.StatusOK, `{"id":"pipe_1"}`
	if o.up {
		o.answered++
	} else {
		o.failed++
		status, body = http.StatusServiceUnavailable, `{"error":{"code":"service_unavailable","message":"down"}}`
		if o.armed > 0 && strings.HasPrefix(id, "b") {
			if o.seen == nil {
				o.seen = map[string]bool{}
			}
			o.seen[id] = true
			o.up = len(o.seen) >= o.armed
		}
	}
	return &http.Response{StatusCode: status, Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
}

func (o *outageBase) counts() (failed, answered int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed, o.answered
}

// outageCall makes one GET with request ID id and a 30 s deadline, and
// reports whether it succeeded.
func outageCall(t *testing.T, tr *Transport, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := newReq(t, ctx, "GET", "")
	req.Header.Set("X-Request-ID", id)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// TestBreakerOutageAndRecovery is the bench's outage scenario with the
// default policy, on fake time: 200 calls at once during a total outage
// cost at most 1.05 attempts each, and of 50 calls in flight when the
// server recovers at least 45 succeed, in the same run.
func TestBreakerOutageAndRecovery(t *testing.T) {
	for seed := range 5 {
		t.Run(fmt.Sprintf("run %d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &outageBase{rtt: 2 * time.Millisecond}
				tr := &Transport{Base: base}

				var wg sync.WaitGroup
				start := time.Now()
				for i := range 200 {
					wg.Go(func() {
						ok, _ := outageCall(t, tr, fmt.Sprintf("a%d", i))
						assert.False(t, ok, "a call succeeded during the outage")
					})
				}
				wg.Wait()
				failed, _ := base.counts()
				amplification := float64(failed) / 200
				t.Logf("outage: %d attempts for 200 calls (%.3f a call), the last failed after %v", failed, amplification, time.Since(start))
				assert.LessOrEqual(t, amplification, 1.05, "server attempts per call during the outage")
				// Typically 208: 200 first attempts, 4 retries from the full
				// bucket, 4 probes (the figure in docs/retries.md).
				assert.GreaterOrEqual(t, failed, 204)
				// No call waited longer than its backoff ceilings add up
				// to: 0.5 + 1 + 2 + 4 s, plus its round trips.
				assert.LessOrEqual(t, time.Since(start), 7500*time.Millisecond+5*base.rtt)

				base.mu.Lock()
				base.armed = 50
				base.mu.Unlock()
				var mu sync.Mutex
				succeeded := 0
				for i := range 50 {
					wg.Go(func() {
						ok, err := outageCall(t, tr, fmt.Sprintf("b%d", i))
						mu.Lock()
						defer mu.Unlock()
						if ok {
							succeeded++
						} else {
							t.Logf("in-flight call b%d: %v", i, err)
						}
					})
				}
				wg.Wait()
				t.Logf("recovery: %d of 50 in-flight calls succeeded", succeeded)
				assert.GreaterOrEqual(t, succeeded, 45, "in-flight calls that succeed after the recovery")
				assert.Equal(t, 50, succeeded, "the figure in docs/retries.md")
			})
		})
	}
}

// TestBreakerSequentialOutage: one call at a time during a total outage.
// A call alone does not wait for a probe (that would cost one probe per
// call), so the attempts per call stay as low as with the budget alone,
// and the first call after the recovery succeeds at once and closes the
// breaker.
func TestBreakerSequentialOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &outageBase{rtt: 10 * time.Millisecond}
		tr := &Transport{Base: base}
		for i := range 200 {
			ok, err := outageCall(t, tr, fmt.Sprintf("a%d", i))
			require.False(t, ok)
			if i > 0 {
				assert.ErrorContains(t, err, "not retried: retry budget exhausted")
			}
		}
		failed, _ := base.counts()
		assert.Equal(t, 5+199, failed, "5 attempts for the first call, then one each")

		base.mu.Lock()
		base.up = true
		base.mu.Unlock()
		start := time.Now()
		ok, err := outageCall(t, tr, "fresh")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, 10*time.Millisecond, time.Since(start), "one round trip")

		// The breaker is closed: a failure is retried again.
		base.mu.Lock()
		base.up = false
		base.mu.Unlock()
		_, err = outageCall(t, tr, "after")
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, defaultMaxAttempts, apiErr.Attempts, "one success restores retries")
	})
}

// TestBreakerWaiterKeepsItsEntry: on fake time, calls waiting for a
// probe keep their host's entry while 1024 other hosts fail, so a new
// call finds the open breaker, and its answer closes it and wakes the
// waiter at once, before the probe is due.
func TestBreakerWaiterKeepsItsEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var sent []string
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			time.Sleep(10 * time.Millisecond)
			if req.URL.Host == "a.example" {
				mu.Lock()
				sent = append(sent, fmt.Sprintf("%s@%v", req.Header.Get("X-Request-ID"), time.Since(start)))
				mu.Unlock()
			}
			if req.URL.Host != "a.example" || time.Since(start) < 100*time.Millisecond {
				return failingBase(req)
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := &Transport{Base: base, rand: half, Retry: RetryPolicy{Budget: RetryBudget{MaxTokens: 2}}}
		call := func(host, id string) error {
			req := newReq(t, context.Background(), "GET", "")
			req.URL.Host = host
			req.Header.Set("X-Request-ID", id)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		require.Error(t, call("a.example", "Z"), "spends the budget of 2: the breaker is open")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range []string{"A", "B"} {
			wg.Go(func() { errs[i] = call("a.example", id) })
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // both failed; A will probe at 270 ms, B waits for it
		old := tr.table().lookup("a.example")
		require.NotNil(t, old)
		for i := range maxHosts {
			addFailing(tr.table(), fmt.Sprintf("h%d.example", i), time.Now())
		}
		require.Same(t, old, tr.table().lookup("a.example"), "the entry stays")
		time.Sleep(100 * time.Millisecond) // the server is up
		require.NoError(t, call("a.example", "C"), "a new call, on the same entry")
		wg.Wait()
		assert.NoError(t, errs[0], "the probe")
		assert.NoError(t, errs[1], "the waiter, woken by C's answer")
		ms := time.Millisecond
		assert.Equal(t, []string{
			fmt.Sprintf("Z@%v", 10*ms),
			fmt.Sprintf("A@%v", 20*ms), fmt.Sprintf("B@%v", 21*ms), // first attempts, failed
			fmt.Sprintf("C@%v", 142*ms),
			fmt.Sprintf("B@%v", 152*ms), // the waiter, sent at once when C's answer closed the breaker
			fmt.Sprintf("A@%v", 280*ms), // the probe, sent 250 ms (its backoff) after its failure
		}, sent, "what a.example received, and when it answered")
	})
}

// TestBreakerClosedByAnEarlierCall: a call that started before its host
// had any entry, and succeeds after the host's breaker opened, closes it.
func TestBreakerClosedByAnEarlierCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Header.Get("X-Request-ID") == "slow" {
				<-release
				return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			}
			return failingBase(req)
		})
		tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}
		req := func(id string) *http.Request {
			r := newReq(t, context.Background(), "GET", "")
			r.Header.Set("X-Request-ID", id)
			return r
		}
		done := make(chan error)
		go func() {
			_, err := tr.RoundTrip(req("slow"))
			done <- err
		}()
		synctest.Wait() // in flight, before the host has an entry
		for i := range 6 {
			_, _ = tr.RoundTrip(req(fmt.Sprint(i)))
		}
		s := tr.table().lookup("api.neuracraft.com")
		require.NotNil(t, s)
		require.Equal(t, 4.0, s.tokens, "open")
		close(release)
		require.NoError(t, <-done)
		assert.Equal(t, 10.0, s.tokens, "closed by the call that started earlier")
	})
}
