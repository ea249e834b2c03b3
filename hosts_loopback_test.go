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
