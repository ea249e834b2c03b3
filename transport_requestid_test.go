package neuracraft

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

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
