// Tests of Transport's retry loop: what passes through, request IDs, the
// retry matrix, backoff, deadlines, bodies sent again, the ShouldRetry and
// OnRetry hooks, WrapClient and concurrent use. retry_budget_test.go holds
// the per-host budget and cooldown.

package neuracraft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTransportSuccessPassesThrough(t *testing.T) {
	t.Parallel()
	body := &closeTracker{Reader: strings.NewReader(`{"id":"pipe_1"}`)}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: req}, nil
	})
	tr := &Transport{Base: base}
	req := newReq(t, context.Background(), "GET", "")
	req.Header.Set("Accept", "application/json")
	before := req.Header.Clone()

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Same(t, body, resp.Body, "the success body must reach the caller unread and unwrapped")
	assert.Equal(t, before, req.Header, "the caller's request must not be modified")
	assert.Len(t, resp.Request.Header.Get("X-Request-ID"), 32)
	assert.Equal(t, "application/json", resp.Request.Header.Get("Accept"))
}

func TestTransportRequestID(t *testing.T) {
	t.Run("fresh and the same on every attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(503), answer(503), answer(200)}}
			tr := &Transport{Base: base}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.NoError(t, err)
			log := base.log()
			require.Len(t, log, 3)
			assert.Len(t, log[0].requestID, 32)
			for _, s := range log {
				assert.Equal(t, log[0].requestID, s.requestID)
			}
			_, err = tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.NoError(t, err)
			assert.NotEqual(t, log[0].requestID, base.log()[3].requestID, "each call gets its own ID")
		})
	})
	t.Run("the caller's is kept", func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(404)}}
		req := newReq(t, context.Background(), "GET", "")
		req.Header.Set("X-Request-ID", "caller-1")
		_, err := (&Transport{Base: base}).RoundTrip(req)
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "caller-1", base.log()[0].requestID)
		assert.Equal(t, "caller-1", apiErr.RequestID, "without a response header, the ID sent")
	})
	t.Run("the response's wins in the error", func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(404, "X-Request-ID", "req_server")}}
		_, err := (&Transport{Base: base}).RoundTrip(newReq(t, context.Background(), "GET", ""))
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "req_server", apiErr.RequestID)
	})
}

// TestTransportRetryMatrix checks every method against every status and a
// network error with the default policy.
func TestTransportRetryMatrix(t *testing.T) {
	methods := []string{"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH"}
	statuses := []int{400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504, 0}
	idempotent := map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true}
	for _, method := range methods {
		for _, status := range statuses {
			for _, key := range []bool{false, true} {
				want := 1
				switch {
				case status == 429 || status == 503:
					want = defaultMaxAttempts
				case status == 500 || status == 502 || status == 504 || status == 0:
					if idempotent[method] || key {
						want = defaultMaxAttempts
					}
				}
				name := fmt.Sprintf("%s/%d/key=%v", method, status, key)
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						st := answer(status)
						if status == 0 {
							st = step{err: syscall.ECONNRESET}
						}
						base := &scriptBase{steps: []step{st}}
						tr := &Transport{Base: base, rand: zero}
						req := newReq(t, context.Background(), method, "")
						if key {
							req.Header.Set("Idempotency-Key", "k1")
						}
						_, err := tr.RoundTrip(req)
						require.Error(t, err)
						assert.Equal(t, want, base.attempts())
						var apiErr *APIError
						if status != 0 {
							require.ErrorAs(t, err, &apiErr)
							assert.Equal(t, want, apiErr.Attempts)
						}
					})
				})
			}
		}
	}
}

func TestTransportBodyHints(t *testing.T) {
	plugin := func(status int, retryable string) step {
		return step{status: status, header: http.Header{},
			body: `{"error":{"code":8401,"message":"plugin","retryable":` + retryable + `}}`}
	}
	tests := []struct {
		name   string
		method string
		step   step
		want   int
	}{
		{"hint true retries a POST after 500", "POST", plugin(500, "true"), defaultMaxAttempts},
		{"hint false stops a GET after 503", "GET", plugin(503, "false"), 1},
		{"no hint, unregistered plugin code, 500", "GET", plugin(500, "null"), 1},
		{"no hint, unregistered plugin code, 503", "POST", plugin(503, "null"), defaultMaxAttempts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &scriptBase{steps: []step{tc.step}}
				_, err := (&Transport{Base: base, rand: zero}).RoundTrip(newReq(t, context.Background(), tc.method, ""))
				require.Error(t, err)
				assert.Equal(t, tc.want, base.attempts())
			})
		})
	}
}

func TestTransportBackoffTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(500)}}
		tr := &Transport{Base: base, rand: half}
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.Error(t, err)
		var gaps []time.Duration
		log := base.log()
		for i := 1; i < len(log); i++ {
			gaps = append(gaps, log[i].at.Sub(log[i-1].at))
		}
		// Half of 500ms, 1s, 2s, 4s.
		want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}
		assert.Empty(t, cmp.Diff(want, gaps))
		assert.Equal(t, 3750*time.Millisecond, time.Since(start))
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, max time.Duration
		n         int
		r         float64
		want      time.Duration
	}{
		{0, 0, 1, 1, defaultBaseDelay},
		{0, 0, 2, 0.5, defaultBaseDelay},
		{time.Second, 10 * time.Second, 4, 1, 8 * time.Second},
		{time.Second, 10 * time.Second, 5, 1, 10 * time.Second},
		{time.Second, 10 * time.Second, 200, 1, 10 * time.Second},
		{time.Second, 10 * time.Second, 3, 0, 0},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, backoff(tc.base, tc.max, tc.n, tc.r), "%+v", tc)
	}
}

func TestTransportDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "5")}}
		tr := &Transport{Base: base}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
		assert.Zero(t, time.Since(start), "a wait past the deadline must not start")
		assert.ErrorIs(t, err, ErrRateLimited)
		assert.Equal(t, 1, base.attempts())
	})
}

func TestTransportCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503, "Retry-After", "2")}}
		tr := &Transport{Base: base}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, ErrUnavailable, "the last failure stays reachable")
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 1, apiErr.Attempts)
	})
}

func TestTransportBodies(t *testing.T) {
	t.Run("rewound with GetBody on every retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(503), answer(503), answer(201)}}
			_, err := (&Transport{Base: base}).RoundTrip(newReq(t, context.Background(), "POST", `{"name":"p"}`))
			require.NoError(t, err)
			for _, s := range base.log() {
				assert.Equal(t, `{"name":"p"}`, s.body)
			}
		})
	})
	t.Run("not retried without GetBody, and closed", func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503), answer(200)}}
		req := newReq(t, context.Background(), "PUT", "")
		body := &closeTracker{Reader: strings.NewReader("data")}
		req.Body, req.GetBody = body, nil
		_, err := (&Transport{Base: base}).RoundTrip(req)
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.Equal(t, 1, base.attempts())
		assert.True(t, body.closed)
	})
	t.Run("closed when held back by a cooldown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "30"), answer(200)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			req := newReq(t, ctx, "POST", "")
			body := &closeTracker{Reader: strings.NewReader("data")}
			req.Body = body
			_, err = tr.RoundTrip(req)
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.True(t, body.closed)
		})
	})
	t.Run("GetBody failure returns the last error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(503), answer(200)}}
			req := newReq(t, context.Background(), "POST", "x")
			req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
			_, err := (&Transport{Base: base}).RoundTrip(req)
			assert.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorContains(t, err, "gone")
			assert.Equal(t, 1, base.attempts())
		})
	})
}

func TestTransportShouldRetryOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(409), answer(409), answer(200)}}
		tr := &Transport{Base: base, Retry: RetryPolicy{
			ShouldRetry: func(req *http.Request, err error) bool {
				return errors.Is(err, Code(409)) || DefaultShouldRetry(req, err)
			},
		}}
		_, err := tr.RoundTrip(newReq(t, context.Background(), "POST", ""))
		require.NoError(t, err)
		assert.Equal(t, 3, base.attempts())

		base = &scriptBase{steps: []step{answer(503)}}
		tr = &Transport{Base: base, Retry: RetryPolicy{
			ShouldRetry: func(*http.Request, error) bool { return false },
		}}
		_, err = tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.Error(t, err)
		assert.Equal(t, 1, base.attempts())
	})
}

func TestTransportOnRetryAndLogRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, nil))
		var events []RetryEvent
		base := &scriptBase{steps: []step{answer(503, "Retry-After", "1"), answer(500), answer(200)}}
		tr := &Transport{Base: base, rand: half, OnRetry: func(ev RetryEvent) {
			events = append(events, ev)
			LogRetries(logger)(ev)
		}}
		req, err := http.NewRequest("GET", "https://u:pw_secret@api.neuracraft.com/v1/runs/r1?api_key=k_secret&limit=5", nil)
		require.NoError(t, err)
		req.Header.Set("X-API-Key", "nc_secret")
		req.Header.Set("X-Request-ID", "req_1")
		_, err = tr.RoundTrip(req)
		require.NoError(t, err)
		require.Len(t, events, 2)
		assert.Equal(t, []int{1, 2}, []int{events[0].Attempt, events[1].Attempt})
		assert.Equal(t, []time.Duration{time.Second, 500 * time.Millisecond}, []time.Duration{events[0].Delay, events[1].Delay})
		assert.ErrorIs(t, events[0].Err, ErrUnavailable)
		assert.ErrorIs(t, events[1].Err, ErrInternal)
		assert.Equal(t, "https://api.neuracraft.com/v1/runs/r1?api_key=REDACTED&limit=5", events[0].URL)
		out := buf.String()
		assert.Contains(t, out, `"request_id":"req_1"`)
		assert.Contains(t, out, `"attempt":2`)
		for _, secret := range []string{"pw_secret", "k_secret", "nc_secret"} {
			assert.NotContains(t, out, secret)
		}
	})
}

func TestWrapClient(t *testing.T) {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	redirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := &http.Transport{}
	c := &http.Client{Transport: base, Timeout: 7 * time.Second, Jar: jar, CheckRedirect: redirect}

	w := WrapClient(c)
	require.NotSame(t, c, w)
	assert.Same(t, base, c.Transport, "the original client is not modified")
	tr, ok := w.Transport.(*Transport)
	require.True(t, ok)
	assert.Same(t, base, tr.Base)
	assert.Equal(t, 7*time.Second, w.Timeout)
	assert.Same(t, jar, w.Jar)
	assert.NotNil(t, w.CheckRedirect)

	again := WrapClient(w)
	assert.Same(t, tr, again.Transport, "wrapping twice does not stack transports")

	d := WrapClient(nil)
	dt, ok := d.Transport.(*Transport)
	require.True(t, ok)
	assert.Nil(t, dt.Base, "nil Base means http.DefaultTransport")
}

func TestTransportErrorThroughClient(t *testing.T) {
	t.Parallel()
	base := &scriptBase{steps: []step{answer(404, "X-Request-ID", "req_abc123")}}
	c := WrapClient(&http.Client{Transport: base})
	_, err := c.Get("https://api.neuracraft.com/v1/pipelines/pipe_1?token=t_secret")
	var urlErr *url.Error
	require.ErrorAs(t, err, &urlErr)
	assert.ErrorIs(t, err, ErrNotFound)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: scripted (request req_abc123)", apiErr.Error())
	assert.NotContains(t, apiErr.URL, "t_secret")
}

func TestTransportNoRequestURL(t *testing.T) {
	t.Parallel()
	body := &closeTracker{Reader: strings.NewReader("x")}
	_, err := (&Transport{}).RoundTrip(&http.Request{Method: "POST", Body: body})
	require.Error(t, err)
	assert.True(t, body.closed)
}

func TestTransportConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var steps []step
		for i := range 400 {
			if i%20 == 0 { // 5%: well within the retry budget
				steps = append(steps, answer(503))
			} else {
				steps = append(steps, answer(200))
			}
		}
		base := &scriptBase{steps: steps}
		tr := &Transport{Base: base}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 5 {
					resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
					if assert.NoError(t, err) {
						resp.Body.Close()
					}
				}
			})
		}
		wg.Wait()
	})
}
