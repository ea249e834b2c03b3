package main

import (
	"context"
	"errors"
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

// scriptedBase is an http.RoundTripper that answers from a script of
// statuses (0 means a network error) and records what it was sent.
type scriptedBase struct {
	mu        sync.Mutex
	script    []int
	bodies    []string
	responses int // responses returned
	closed    int // response bodies closed
	attempt   int
}

var errNetwork = errors.New("connection reset")

func (b *scriptedBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if req.Body != nil {
		data, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		b.bodies = append(b.bodies, string(data))
	}
	status := b.script[min(b.attempt, len(b.script)-1)]
	b.attempt++
	if status == 0 {
		return nil, errNetwork
	}
	b.responses++
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: &closeCounter{Reader: strings.NewReader("{}"), b: b}, Request: req}, nil
}

type closeCounter struct {
	io.Reader
	b *scriptedBase
}

func (c *closeCounter) Close() error {
	c.b.closed++ // under b.mu: RoundTrip and the retry loop do not overlap
	return nil
}

func TestBackoffTransport(t *testing.T) {
	for _, tc := range []struct {
		name         string
		script       []int
		body         string
		noGetBody    bool
		wantStatus   int
		wantErr      error // matched with errors.Is; nil: no error
		wantAttempts int
	}{
		{name: "5xx then success", script: []int{503, 500, 200}, wantStatus: 200, wantAttempts: 3},
		{name: "network error then success", script: []int{0, 200}, wantStatus: 200, wantAttempts: 2},
		{name: "429 is passed through", script: []int{429, 200}, wantStatus: 429, wantAttempts: 1},
		{name: "404 is passed through", script: []int{404, 200}, wantStatus: 404, wantAttempts: 1},
		{name: "body sent again from GetBody", script: []int{502, 200}, body: "payload", wantStatus: 200, wantAttempts: 2},
		{name: "body without GetBody is sent once", script: []int{503, 200}, body: "payload", noGetBody: true,
			wantErr: errNoReplay, wantAttempts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &scriptedBase{script: tc.script}
				rt := &backoffTransport{base: base}
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://example.invalid/v1", body)
				require.NoError(t, err)
				if tc.noGetBody {
					req.GetBody = nil
				}
				resp, err := rt.RoundTrip(req)
				if tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
				} else {
					require.NoError(t, err)
					assert.Equal(t, tc.wantStatus, resp.StatusCode)
					require.NoError(t, resp.Body.Close())
				}
				assert.Equal(t, tc.wantAttempts, base.attempt, "attempts")
				assert.Equal(t, base.responses, base.closed,
					"every response body is closed: by the transport, or by the caller for the one it returns")
				if tc.body != "" {
					for i, got := range base.bodies {
						assert.Equal(t, tc.body, got, "body of attempt %d", i+1)
					}
				}
			})
		})
	}
}

// TestBackoffTransportDeadline: against a server that never recovers, the
// caller's deadline ends the retries (backoff.Retry's own limit is 15
// minutes), with the backoff's growing, jittered waits between attempts.
func TestBackoffTransportDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptedBase{script: []int{503}}
		rt := &backoffTransport{base: base}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://example.invalid/v1", nil)
		require.NoError(t, err)
		start := time.Now()
		_, err = rt.RoundTrip(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 30*time.Second, time.Since(start))
		// Waits of 0.5 s × 1.5^n, each within ±50%: between 7 and 13
		// attempts fit in 30 s.
		assert.GreaterOrEqual(t, base.attempt, 7)
		assert.LessOrEqual(t, base.attempt, 13)
	})
}

// TestPeerDefaults runs the concurrent outage shape, small, for the
// clients that do not sleep between attempts against a 503: it pins the
// configuration each is measured with (bare and resty, whose default
// retry condition is a network error only, send each call once;
// failsafehttp's default policy sends it three times, at once). Neither
// bare nor resty retries, so no call in flight at recovery succeeds.
func TestPeerDefaults(t *testing.T) {
	cfg := &config{callTimeout: 5 * time.Second, outageCalls: 20, outageConc: 5, inflightCalls: 5}
	for _, tc := range []struct {
		k        kind
		attempts float64
	}{{bare, 1}, {restyKind, 1}, {failsafe, 3}} {
		t.Run(tc.k.String(), func(t *testing.T) {
			r := runOutage(tc.k, cfg)
			assert.Equal(t, tc.attempts, r.attemptsPerCall, "server attempts per call during the outage")
			if tc.attempts == 1 {
				assert.Equal(t, 0, r.inflightOK, "in-flight calls that succeed")
			}
			assert.GreaterOrEqual(t, r.freshOK, time.Duration(0), "a call after the recovery succeeds")
		})
	}
}

// TestSequentialOutage runs the sequential shape for bare: every outage
// call is one attempt, the recovering call fails (bare does not retry)
// and the call after it succeeds.
func TestSequentialOutage(t *testing.T) {
	cfg := &config{seqCycles: 2, seqCalls: 3, seqTimeout: 2 * time.Second}
	r := runSequential(bare, cfg)
	assert.Equal(t, 1.0, r.attemptsPerCall)
	assert.Equal(t, 0, r.recoveringOK)
	assert.Equal(t, 2, r.afterOK)
}

// TestOutageServerEpochs: a recovery trigger that fires late, after a new
// outage has started, does not end the new one.
func TestOutageServerEpochs(t *testing.T) {
	srv := newOutageServer()
	defer srv.Close()
	srv.goDown(nil)
	srv.mu.Lock()
	old := srv.epoch
	srv.mu.Unlock()
	srv.recoverNow()
	srv.goDown(nil)
	srv.recoverFrom(old)
	up, _, recovered := srv.state()
	require.False(t, up, "a stale trigger ended the new outage")
	srv.recoverNow()
	up, _, _ = srv.state()
	require.True(t, up)
	<-recovered // closed by the recovery
}
