package neuracraft

// Tests of the host state through a real loopback server: callers who give
// up while a cooldown holds them, and an outage with calls in flight at
// the recovery.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loopbackTransport returns a Transport over a fresh http.Transport, whose
// idle connections are closed when t ends.
func loopbackTransport(t *testing.T, p RetryPolicy) *Transport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 64
	tr := &Transport{Base: base, Retry: p}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func loopbackGet(ctx context.Context, tr *Transport, url, id string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Request-ID", id)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// TestCooldownPhantomSlots: 400 callers cancel while a cooldown holds
// them and 200 more come with a context already canceled; none of them
// is sent, none keeps a place, and once the cooldown is over a fresh call
// with a 1 s deadline goes at once.
func TestCooldownPhantomSlots(t *testing.T) {
	noLeaks(t)
	var hits, served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		served.Add(1)
	}))
	t.Cleanup(srv.Close)
	tr := loopbackTransport(t, RetryPolicy{MaxAttempts: 1})
	url := srv.URL + "/v1/pipelines"

	err := loopbackGet(t.Context(), tr, url, "first")
	require.ErrorIs(t, err, ErrRateLimited)
	s := tr.table().lookup(strings.TrimPrefix(srv.URL, "http://"))
	require.NotNil(t, s, "the host cools down")

	const held, canceled = 400, 200
	ctx, cancelHeld := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make([]error, held)
	for i := range held {
		wg.Go(func() { errs[i] = loopbackGet(ctx, tr, url, fmt.Sprintf("held-%d", i)) })
	}
	queued := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.held
	}
	require.Eventually(t, func() bool { return queued() == held }, 10*time.Second, time.Millisecond,
		"callers held (of %d)", held)

	done, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range canceled {
		assert.ErrorIs(t, loopbackGet(done, tr, url, fmt.Sprintf("done-%d", i)), context.Canceled)
	}
	cancelHeld()
	wg.Wait()
	for i, err := range errs {
		assert.ErrorIs(t, err, context.Canceled, "held-%d", i)
	}
	assert.Zero(t, queued(), "places kept by callers who left")

	s.mu.Lock()
	end := s.until
	s.mu.Unlock()
	time.Sleep(time.Until(end) + 20*time.Millisecond) // the cooldown is over

	short, cancelShort := context.WithTimeout(t.Context(), time.Second)
	defer cancelShort()
	require.NoError(t, loopbackGet(short, tr, url, "fresh"), "a fresh call after the cooldown")
	require.NoError(t, loopbackGet(t.Context(), tr, url, "fresh-no-deadline"))
	assert.Equal(t, int32(2), served.Load(), "requests the server received after the 429")
	assert.Equal(t, int32(3), hits.Load())
}

// TestBreakerOutageLoopback is TestBreakerOutageAndRecovery on a real
// loopback server and real time, with the default policy: 200 calls at
// once during an outage, then 50 calls in flight when the server
// recovers.
func TestBreakerOutageLoopback(t *testing.T) {
	noLeaks(t)
	var (
		mu     sync.Mutex
		up     bool
		armed  int
		seen   = map[string]bool{}
		failed int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		mu.Lock()
		if up {
			mu.Unlock()
			_, _ = io.WriteString(w, `{"id":"pipe_1"}`)
			return
		}
		failed++
		if armed > 0 && strings.HasPrefix(id, "b") {
			seen[id] = true
			up = len(seen) >= armed
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"service_unavailable","message":"down"}}`)
	}))
	t.Cleanup(srv.Close)
	tr := loopbackTransport(t, RetryPolicy{})
	url := srv.URL + "/v1/pipelines"
	call := func(id string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		return loopbackGet(ctx, tr, url, id)
	}

	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() { assert.Error(t, call(fmt.Sprintf("a%d", i))) })
	}
	wg.Wait()
	mu.Lock()
	amplification := float64(failed) / 200
	armed = 50
	mu.Unlock()
	t.Logf("outage: %.3f attempts a call", amplification)
	assert.LessOrEqual(t, amplification, 1.05, "server attempts per call during the outage")

	var ok atomic.Int32
	for i := range 50 {
		wg.Go(func() {
			if call(fmt.Sprintf("b%d", i)) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("recovery: %d of 50 in-flight calls succeeded", ok.Load())
	assert.GreaterOrEqual(t, ok.Load(), int32(45), "in-flight calls that succeed after the recovery")
}
