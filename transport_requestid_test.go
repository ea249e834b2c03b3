// Tests of the request IDs of a Transport (transport.go, call.go): a fresh
// one per call, the same on every attempt, the caller's kept, and the one
// that names an error cleaned and capped whether it comes from a custom
// Base's response or from the caller's request.

package neuracraft

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransportCleansRequestIDs: the request ID that names an error is
// cleaned and capped whether it comes from a custom Base's response or
// from the caller's own request header (which is still sent as is).
func TestTransportCleansRequestIDs(t *testing.T) {
	t.Parallel()
	hostile := "req_1\r\nlevel=ERROR msg=forged\x1b[31m\u0085" + strings.Repeat("x", 1<<20)
	var sent string
	tr := &Transport{Retry: RetryPolicy{MaxAttempts: 1}, Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent = req.Header.Get("X-Request-ID")
		h := http.Header{}
		h["X-Request-Id"] = []string{hostile}
		return &http.Response{StatusCode: 500, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	})}
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr))
	assertCleanID(t, apiErr.RequestID)
	assert.Less(t, len(err.Error()), 1000)

	tr.Base = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sent = req.Header.Get("X-Request-ID")
		return nil, io.ErrUnexpectedEOF
	})
	req.Header.Set("X-Request-ID", hostile)
	_, err = tr.RoundTrip(req)
	var reqErr *RequestError
	require.True(t, errors.As(err, &reqErr))
	assertCleanID(t, reqErr.RequestID)
	assert.Equal(t, hostile, sent, "the caller's header must be sent unchanged")
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

// TestHostileRequestIDThroughTransport: a hostile X-Request-ID (hostileIDs)
// reaches the error cleaned and capped through a Transport over a custom
// Base, which returns responses with and without their request, as it does
// through FromResponse (TestHostileRequestIDFromResponse).
func TestHostileRequestIDThroughTransport(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileIDs {
		for _, where := range []string{"response", "request without resp.Request"} {
			t.Run(tt.name+"/"+where, func(t *testing.T) {
				t.Parallel()
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					resp := newErrorResponse(http.StatusNotFound, `{"error":{"code":"not_found","message":"gone"}}`)
					if where == "response" {
						resp.Header["X-Request-Id"] = []string{tt.id}
						resp.Request = req
					}
					return resp, nil
				})
				req, err := http.NewRequest(http.MethodGet, "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
				require.NoError(t, err)
				if where != "response" {
					req.Header["X-Request-Id"] = []string{tt.id}
				}
				resp, err := (&Transport{Base: base}).RoundTrip(req)
				require.Nil(t, resp)
				var apiErr *APIError
				require.ErrorAs(t, err, &apiErr)
				checkCleanError(t, apiErr, tt.want)
			})
		}
	}
}

// assertCleanID checks that id, a hostile X-Request-ID after cleaning,
// kept its start and lost its line breaks and control characters.
func assertCleanID(t *testing.T, id string) {
	t.Helper()
	assert.True(t, strings.HasPrefix(id, "req_1"), id)
	assert.NotContains(t, id, "\r")
	assert.NotContains(t, id, "\n")
	assert.NotContains(t, id, "\x1b")
	assert.NotContains(t, id, "\u0085")
	assert.LessOrEqual(t, utf8.RuneCountInString(id), maxHeaderValue)
}
