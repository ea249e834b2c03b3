// Failure lab (transport_lab_test.go): Retry-After on the wire, and the
// matrix of faults against the retry rule. The flood of requests against a
// cooling host is in cooldown_client_test.go.

package neuracraft_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestFailureLabRetryAfter: a 429 whose Retry-After is negative, zero,
// fractional, garbage or a date in the past is retried after the backoff
// (as if it had no Retry-After); one too long to wait for, or longer than
// the caller's deadline, ends the call at once with RetryAfter set.
func TestFailureLabRetryAfter(t *testing.T) {
	const route = "GET /pipelines"
	for _, tc := range []struct {
		name, value string
		deadline    time.Duration // of the caller's context; 0 for none
		// wantAfter, when set, is the call's error's RetryAfter: the call
		// ends at once. Otherwise it is retried after a backoff.
		wantAfter func(time.Duration) bool
		// cooling is whether the host cools down after the answer.
		cooling bool
	}{
		{name: "negative", value: "-1"},
		{name: "zero", value: "0"},
		{name: "fraction", value: "1.5"},
		{name: "garbage", value: "soon, maybe"},
		{name: "date in the past", value: time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)},
		{name: "huge", value: "99999999999",
			wantAfter: func(d time.Duration) bool { return d == time.Duration(math.MaxInt64) }},
		{name: "date an hour ahead", value: time.Now().Add(time.Hour).UTC().Format(http.TimeFormat),
			wantAfter: func(d time.Duration) bool { return d > 59*time.Minute && d <= time.Hour }},
		{name: "longer than the deadline", value: "1", deadline: 500 * time.Millisecond,
			wantAfter: func(d time.Duration) bool { return d == time.Second }, cooling: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := labServer(t)
			var events []neuracraft.RetryEvent
			c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry,
				onRetry: func(ev neuracraft.RetryEvent) { events = append(events, ev) }})
			srv.Fail(route, 1, neuracrafttest.RateLimit(tc.value))
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}

			status, err := c.send(ctx, "GET", srv.URL+"/pipelines", "")
			reqs := srv.RequestsFor(route)
			if tc.wantAfter == nil {
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, status)
				require.Len(t, reqs, 2, "retried")
				assert.Equal(t, "rate_limit", reqs[0].Fault)
				assert.Empty(t, reqs[1].Fault)
				assertSameRequestID(t, reqs)
				require.Len(t, events, 1)
				assert.Less(t, events[0].Delay, fastRetry.BaseDelay, "the backoff, not a Retry-After")
				assert.Zero(t, requireAPIError(t, events[0].Err).RetryAfter)
			} else {
				apiErr := requireAPIError(t, err)
				assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
				assert.True(t, tc.wantAfter(apiErr.RetryAfter), "RetryAfter %v", apiErr.RetryAfter)
				assert.Equal(t, 1, apiErr.Attempts)
				assert.Len(t, reqs, 1, "returned at once")
				assert.Empty(t, events)
			}

			// A cooldown holds back a call that cannot wait for it, unsent.
			wait := 5 * time.Second
			if tc.cooling {
				wait = 100 * time.Millisecond
			}
			ctx2, cancel2 := context.WithTimeout(t.Context(), wait)
			defer cancel2()
			_, err = c.send(ctx2, "GET", srv.URL+"/pipelines", "")
			var cd *neuracraft.CooldownError
			if tc.cooling {
				require.ErrorAs(t, err, &cd)
				assert.Len(t, srv.RequestsFor(route), len(reqs), "held back")
			} else {
				assert.NoError(t, err, "no cooldown")
				assert.Len(t, srv.RequestsFor(route), len(reqs)+1)
			}
		})
	}
}

// TestFailureLabFaultMatrix: gateway pages, plugin errors, reset
// connections and cut JSON, each retried or not as the method and the
// body say.
func TestFailureLabFaultMatrix(t *testing.T) {
	// Faults the Transport retries: the call succeeds on the second attempt.
	for _, tc := range []labFault{
		{name: "proxy HTML 502 GET", route: labGet, fault: neuracrafttest.ProxyHTML(502)},
		{name: "plugin retryable POST", route: labPost,
			fault: neuracrafttest.Plugin(500, 8102, "Renderer busy", true)},
		{name: "plugin retryable 400 GET", route: labGet,
			fault: neuracrafttest.Plugin(400, 8203, "Source locked", true)},
		{name: "reset GET", route: labGet, fault: neuracrafttest.ResetConnection(), noKeepAlive: true},
		{name: "reset POST with Idempotency-Key", route: labPost, fault: neuracrafttest.ResetConnection(),
			header: []string{"Idempotency-Key", "lab-1"}, noKeepAlive: true},
		{name: "reset POST with X-Idempotency-Key", route: labPost, fault: neuracrafttest.ResetConnection(),
			header: []string{"X-Idempotency-Key", "lab-2"}, noKeepAlive: true},
		{name: "truncated JSON 502 GET", route: labGet, fault: neuracrafttest.Truncated(502)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, reqs, err := sendLabFault(t, tc)
			require.NoError(t, err)
			assert.Equal(t, tc.wantStatus(), status)
			require.Len(t, reqs, 2, "retried once")
			assert.Empty(t, reqs[1].Fault)
			assertSameRequestID(t, reqs)
		})
	}

	// Faults it does not retry: the error of the one attempt.
	t.Run("proxy HTML 502 POST", func(t *testing.T) {
		err := sendLabFaultNotRetried(t, labFault{route: labPost, fault: neuracrafttest.ProxyHTML(502)})
		apiErr := requireNotRetriedAPIError(t, err, 502, 502)
		assert.Equal(t, "Bad Gateway", apiErr.Message)
		assert.NoError(t, apiErr.Err)
		assert.True(t, neuracraft.IsRetryable(err), "retryable, but not for a POST")
	})
	t.Run("plugin not retryable GET", func(t *testing.T) {
		err := sendLabFaultNotRetried(t, labFault{route: labGet,
			fault: neuracrafttest.Plugin(500, 8102, "Template invalid", false)})
		apiErr := requireNotRetriedAPIError(t, err, 500, 8102)
		assert.True(t, neuracraft.IsPlugin(err))
		require.NotNil(t, apiErr.Retryable)
		assert.False(t, *apiErr.Retryable)
		assert.JSONEq(t, `{"plugin_id":"pdf-export","attempt":1}`, string(apiErr.Details))
	})
	t.Run("plugin not retryable 503 GET", func(t *testing.T) {
		err := sendLabFaultNotRetried(t, labFault{route: labGet,
			fault: neuracrafttest.Plugin(503, 8301, "Channel archived", false)})
		requireNotRetriedAPIError(t, err, 503, 8301)
	})
	t.Run("reset POST", func(t *testing.T) {
		err := sendLabFaultNotRetried(t, labFault{route: labPost, fault: neuracrafttest.ResetConnection(), noKeepAlive: true})
		var apiErr *neuracraft.APIError
		assert.False(t, errors.As(err, &apiErr), "no answer, no APIError")
		assert.True(t, labIsCut(err), "a connection error: %v", err)
		assert.True(t, neuracraft.IsRetryable(err), "retryable, but not for a POST")
		assert.ErrorContains(t, err, "POST /v1/pipelines")
	})
	t.Run("truncated JSON 400 GET", func(t *testing.T) {
		err := sendLabFaultNotRetried(t, labFault{route: labGet, fault: neuracrafttest.Truncated(400)})
		apiErr := requireNotRetriedAPIError(t, err, 400, 400)
		var syntaxErr *json.SyntaxError
		assert.ErrorAs(t, apiErr.Err, &syntaxErr)
		assert.False(t, apiErr.Truncated, "the HTTP body was complete")
		assert.Equal(t, "Bad Request", apiErr.Message)
	})
	t.Run("truncated JSON 500 POST", func(t *testing.T) {
		err := sendLabFaultNotRetried(t, labFault{route: labPost, fault: neuracrafttest.Truncated(500)})
		requireNotRetriedAPIError(t, err, 500, 500)
	})
}

// The routes of TestFailureLabFaultMatrix.
const (
	labGet  = "GET /pipelines"
	labPost = "POST /pipelines"
)

// labFault is one case of TestFailureLabFaultMatrix: one fault on route,
// then the fake's normal answer.
type labFault struct {
	name        string
	route       string
	fault       neuracrafttest.Fault
	header      []string
	noKeepAlive bool
}

// wantStatus is the status of the fake's normal answer on tc.route.
func (tc labFault) wantStatus() int {
	if tc.route == labPost {
		return http.StatusCreated
	}
	return http.StatusOK
}

// sendLabFault sends one call with tc.fault on its first attempt and
// returns the status, the requests the server received and the error,
// after checking that the first of them met the fault.
func sendLabFault(t *testing.T, tc labFault) (int, []neuracrafttest.Request, error) {
	t.Helper()
	srv := labServer(t)
	c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry, noKeepAlive: tc.noKeepAlive})
	srv.Fail(tc.route, 1, tc.fault)
	method, body := "GET", ""
	if tc.route == labPost {
		method, body = "POST", `{"name":"lab"}`
	}
	status, err := c.send(t.Context(), method, srv.URL+"/pipelines", body, tc.header...)
	reqs := srv.RequestsFor(tc.route)
	require.NotEmpty(t, reqs)
	assert.Equal(t, tc.fault.Kind(), reqs[0].Fault)
	return status, reqs, err
}

// sendLabFaultNotRetried is sendLabFault for a fault that is not retried:
// it checks that the call failed after one attempt and returns the error.
func sendLabFaultNotRetried(t *testing.T, tc labFault) error {
	t.Helper()
	_, reqs, err := sendLabFault(t, tc)
	require.Error(t, err)
	assert.Len(t, reqs, 1, "not retried")
	return err
}

// requireNotRetriedAPIError checks that err is the *APIError of one
// attempt answered status with code, and returns it.
func requireNotRetriedAPIError(t *testing.T, err error, status int, code neuracraft.Code) *neuracraft.APIError {
	t.Helper()
	apiErr := requireAPIError(t, err)
	assert.Equal(t, status, apiErr.StatusCode)
	assert.Equal(t, code, apiErr.Code)
	assert.Equal(t, 1, apiErr.Attempts)
	return apiErr
}
