// Tests of the retry rule (retry.go) through a Transport: every method
// against every status, the body's retryable hint, the backoff and its
// timing, a wait that the deadline does not allow, a ShouldRetry of the
// caller's, and the note that says why a retryable failure was not
// retried. retry_decide_test.go has the decision on explicit values,
// retry_after_test.go Retry-After.

package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
