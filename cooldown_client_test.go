// Tests of the cooldown as a caller meets it, through the public API against
// the fake server of neuracrafttest: a Client's call held back after a 429,
// and a flood of calls against a cooling host in the failure lab
// (helpers_lab_test.go). cooldown_test.go has the queue itself.

package neuracraft_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientCooldown checks that a request held back by the Transport's
// cooldown after a 429 comes out of Do as a *CooldownError, unsent.
func TestClientCooldown(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t)
	c.HTTPClient = retrying(nil, neuracraft.RetryPolicy{MaxAttempts: 1})
	srv.Fail("GET /pipelines", 1, neuracrafttest.RateLimit("60"))

	_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	apiErr := requireAPIError(t, err)
	require.Equal(t, 60*time.Second, apiErr.RetryAfter)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = c.Do(ctx, "GET", "/pipelines", nil, nil)
	var cooldown *neuracraft.CooldownError
	require.True(t, errors.As(err, &cooldown), "want a *CooldownError, got %T: %v", err, err)
	require.ErrorIs(t, err, neuracraft.ErrRateLimited)
	require.Equal(t, neuracraft.CodeTooManyRequests, cooldown.Cause)
	require.Regexp(t, requestIDPattern, cooldown.RequestID)
	require.True(t, strings.HasPrefix(err.Error(), "neuracraft: GET /v1/pipelines: held back"), err.Error())
	require.Len(t, srv.RequestsFor("GET /pipelines"), 1, "the held-back request is not sent")
}

// TestFailureLabCooldownFlood: while the host cools down after a 429 with
// Retry-After: 1, 50 concurrent calls wait and are sent only after the
// cooldown, and 10 calls whose deadline comes first fail at once with a
// *CooldownError, never sent.
func TestFailureLabCooldownFlood(t *testing.T) {
	const (
		route   = "GET /pipelines"
		waiters = 50
		hasty   = 10
	)
	srv := labServer(t)
	log := &labAttemptLog{}
	retrying := make(chan struct{})
	var once sync.Once
	c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry,
		wrap: func(base http.RoundTripper) http.RoundTripper {
			log.base = base.(*http.Transport)
			return log
		},
		onRetry: func(neuracraft.RetryEvent) { once.Do(func() { close(retrying) }) },
	})
	srv.Fail(route, 1, neuracrafttest.RateLimit("1"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a bound, far off
	defer cancel()

	first := make(chan error, 1)
	go func() {
		_, err := c.send(ctx, "GET", srv.URL+"/pipelines", "", "X-Request-ID", "first")
		first <- err
	}()
	select {
	case <-retrying:
	case err := <-first:
		require.Failf(t, "the first call ended without a retry", "%v", err)
	}
	_, limited := log.times()
	require.Len(t, limited, 1)
	cooldownEnd := limited[0].Add(time.Second) // no earlier than the Transport's

	var wg sync.WaitGroup
	waitErrs := make([]error, waiters)
	statuses := make([]int, waiters)
	for i := range waiters {
		wg.Go(func() {
			statuses[i], waitErrs[i] = c.send(ctx, "GET", srv.URL+"/pipelines", "",
				"X-Request-ID", fmt.Sprintf("wait-%d", i))
		})
	}
	hastyErrs := make([]error, hasty)
	for i := range hasty {
		wg.Go(func() {
			short, cancel := context.WithDeadline(ctx, limited[0].Add(500*time.Millisecond))
			defer cancel()
			_, hastyErrs[i] = c.send(short, "GET", srv.URL+"/pipelines", "",
				"X-Request-ID", fmt.Sprintf("hasty-%d", i))
		})
	}
	wg.Wait()
	require.NoError(t, <-first)

	for i := range waiters {
		if assert.NoError(t, waitErrs[i], "waiter %d", i) {
			assert.Equal(t, http.StatusOK, statuses[i], "waiter %d", i)
		}
	}
	host := labHost(t, srv.URL)
	for i, err := range hastyErrs {
		var cd *neuracraft.CooldownError
		if !assert.ErrorAs(t, err, &cd, "hasty call %d", i) {
			continue
		}
		assert.ErrorIs(t, err, neuracraft.ErrRateLimited)
		assert.True(t, neuracraft.IsRetryable(err))
		assert.Equal(t, neuracraft.Code(429), cd.Cause)
		assert.Equal(t, host, cd.Host)
		assert.Equal(t, fmt.Sprintf("hasty-%d", i), cd.RequestID)
		// Its turn: the rest of the 1s cooldown, up to one gap of the
		// pace (50 ms) that the first held request waits at random, and
		// one gap for each request held before it (the first call's retry
		// and the waiters).
		assert.True(t, cd.RetryAfter > 0 && cd.RetryAfter <= time.Second+time.Duration(2+waiters)*50*time.Millisecond,
			"RetryAfter %v", cd.RetryAfter)
	}

	// The server: the 429, then the first call's retry and one request per
	// waiter, all answered 200; nothing from the hasty calls.
	reqs := srv.RequestsFor(route)
	require.Len(t, reqs, 1+1+waiters)
	assert.Equal(t, "rate_limit", reqs[0].Fault)
	assert.Equal(t, "first", reqs[0].Header.Get("X-Request-ID"))
	ids := map[string]int{}
	for _, r := range reqs[1:] {
		assert.Empty(t, r.Fault)
		ids[r.Header.Get("X-Request-ID")]++
	}
	want := map[string]int{"first": 1}
	for i := range waiters {
		want[fmt.Sprintf("wait-%d", i)] = 1
	}
	assert.Equal(t, want, ids, "X-Request-IDs received after the 429")

	// The client: every attempt after the 429 was sent after the cooldown.
	sent, _ := log.times()
	require.Len(t, sent, 1+1+waiters)
	early := 0
	for _, at := range sent[1:] {
		if at.Before(cooldownEnd) {
			early++
		}
	}
	assert.Zero(t, early, "attempts sent during the cooldown")
}

// labAttemptLog is a RoundTripper that notes when each attempt is sent and
// when each 429 arrives.
type labAttemptLog struct {
	base    *http.Transport
	mu      sync.Mutex
	sent    []time.Time
	limited []time.Time
}

func (a *labAttemptLog) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.sent = append(a.sent, time.Now())
	a.mu.Unlock()
	resp, err := a.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		a.mu.Lock()
		a.limited = append(a.limited, time.Now())
		a.mu.Unlock()
	}
	return resp, err
}

func (a *labAttemptLog) CloseIdleConnections() { a.base.CloseIdleConnections() }

func (a *labAttemptLog) times() (sent, limited []time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.sent...), append([]time.Time(nil), a.limited...)
}

// labHost returns the host:port of a server URL.
func labHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}
