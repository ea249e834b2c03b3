// Tests of the one-line format every error of the package shares (errors.go,
// errorLine): each error type's line, its zero value, and the request ID and
// attempts that a RequestError and a CooldownError name. errors_test.go has
// the rest of APIError.

package neuracraft

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorLine checks the one format that every error of the package
// shares, and that a zero value of every exported error type reads as a
// sentence without double spaces or empty separators.
func TestErrorLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"APIError zero", &APIError{}, "neuracraft: error response"},
		{"APIError no request", &APIError{StatusCode: 404, Code: 404, Message: "gone"},
			"neuracraft: 404 Not Found: gone"},
		{"APIError method only", &APIError{StatusCode: 500, Code: 500, Method: "GET"},
			"neuracraft: GET: 500 Internal Server Error"},
		{"APIError path only", &APIError{StatusCode: 500, Code: 8102, URL: "https://h/v1/x", RequestID: "r", Attempts: 3},
			"neuracraft: /v1/x: 8102 Plugin Error (HTTP 500, request r, 3 attempts)"},
		{"CooldownError zero", &CooldownError{},
			"neuracraft: held back locally, not sent: the host is cooling down"},
		{"CooldownError full", &CooldownError{Method: "POST", URL: "https://h/v1/p?k=1", RequestID: "r",
			Host: "h", Cause: 429, RetryAfter: 1500e6},
			"neuracraft: POST /v1/p: held back locally, not sent: h is cooling down after 429 Too Many Requests, turn in 1.5s (request r)"},
		{"RequestError zero", &RequestError{}, "neuracraft: no answer"},
		{"RequestError full", &RequestError{Method: "GET", URL: "https://h/v1/p", RequestID: "r", Attempts: 2, Err: io.EOF},
			"neuracraft: GET /v1/p: EOF (request r, attempt 2)"},
		{"success body", answerError("GET", "/v1/p", &Response{StatusCode: 200, RequestID: "r"},
			errors.New("decoding the response body: boom")),
			"neuracraft: GET /v1/p: 200 OK: decoding the response body: boom (request r)"},
		{"request not built", &callError{method: "POST", path: "/v1/p", err: errors.New("encoding the request body: boom")},
			"neuracraft: POST /v1/p: encoding the request body: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.err.Error()
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, "  ")
			assert.NotContains(t, got, "()")
			assert.False(t, strings.HasSuffix(got, ": "), got)
		})
	}
}

// TestRequestErrorReachable checks that a network failure's request ID and
// attempt count are reachable through http.Client's *url.Error.
func TestRequestErrorReachable(t *testing.T) {
	t.Parallel()
	inner := &RequestError{Method: "GET", URL: "https://h/v1/p", RequestID: "req_9", Attempts: 4, Err: io.ErrUnexpectedEOF}
	var err error = &url.Error{Op: "Get", URL: "https://h/v1/p", Err: inner}
	var got *RequestError
	if assert.ErrorAs(t, err, &got) {
		assert.Equal(t, "req_9", got.RequestID)
		assert.Equal(t, 4, got.Attempts)
	}
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.True(t, IsRetryable(err))
}

func TestTransportNetworkErrorNamesRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{{err: syscall.ECONNRESET}}}
		req := newReq(t, context.Background(), "GET", "")
		req.Header.Set("X-Request-ID", "req_local")
		_, err := (&Transport{Base: base}).RoundTrip(req)
		require.Error(t, err)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.True(t, IsRetryable(err))
		assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: "+
			syscall.ECONNRESET.Error()+" (request req_local, attempt 5, not retried: attempts exhausted)", err.Error())
		var reqErr *RequestError
		require.ErrorAs(t, err, &reqErr)
		assert.Equal(t, "req_local", reqErr.RequestID)
		assert.Equal(t, 5, reqErr.Attempts)
	})
}

// TestCooldownErrorWithoutRequestID: a *CooldownError that names no
// request (one built by hand) says nothing of one.
func TestCooldownErrorWithoutRequestID(t *testing.T) {
	cd := &CooldownError{Method: "GET", URL: "https://h/v1/x", Host: "h", Cause: 503, RetryAfter: time.Second}
	assert.Equal(t, "neuracraft: GET /v1/x: held back locally, not sent: h is cooling down after "+
		"503 Service Unavailable, turn in 1s", cd.Error())
}
