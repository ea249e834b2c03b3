// Tests of what Client.Do makes of any answer, from inside the package:
// arbitrary statuses, Location headers and bodies (FuzzClientDo), and the
// request ID of a success it cannot use. The client_*_test.go files of
// package neuracraft_test test the Client as a caller uses it.

package neuracraft

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientResponseRequestIDCleaned: Client.Do's Response.RequestID, and
// an error about a success, carry a cleaned request ID, and an invalid
// Location header is not echoed into the error.
func TestClientResponseRequestIDCleaned(t *testing.T) {
	t.Parallel()
	badLocation := "http://[::1" + strings.Repeat("L", 4096)
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		h := http.Header{"X-Request-Id": {"req_c\r\nforged"}, "Location": {badLocation}}
		return &http.Response{StatusCode: http.StatusCreated, Header: h, Request: req,
			Body: io.NopCloser(strings.NewReader(`{"id":"pipe_1"}`)), ContentLength: 15}, nil
	})
	c := &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: "nc_test",
		HTTPClient: &http.Client{Transport: &Transport{Base: base}}}
	meta, err := c.Do(context.Background(), http.MethodPost, "/pipelines", map[string]string{"name": "x"}, nil)
	require.Error(t, err)
	assert.Nil(t, meta, "no *Response beside an error")
	checkOneLine(t, "Error()", err.Error())
	assert.NotContains(t, err.Error(), "LLLL", "the Location header is echoed")
	assert.Contains(t, err.Error(), "invalid Location header")
	assert.Contains(t, err.Error(), "(request req_c forged)")
}

// TestClientSkipsByteOrderMark: a success whose JSON starts with a UTF-8
// byte order mark (as some servers write it) decodes, as does the
// *APIError of a failure (testdata/errors/plugin_8102_bom.json).
func TestClientSkipsByteOrderMark(t *testing.T) {
	t.Parallel()
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			Request: req, Body: io.NopCloser(strings.NewReader("\ufeff" + `{"id":"pipe_1"}`))}, nil
	})
	c := &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: "nc_test",
		HTTPClient: &http.Client{Transport: &Transport{Base: base}}}
	var out struct{ ID string }
	_, err := c.Do(context.Background(), http.MethodGet, "/pipelines/pipe_1", nil, &out)
	require.NoError(t, err)
	assert.Equal(t, "pipe_1", out.ID)
}

// FuzzClientDo feeds Client.Do arbitrary answers: statuses, Location
// headers and bodies. It never panics; a failure status gives an
// *APIError, and a success either decodes or fails with an error that
// names the request ID.
func FuzzClientDo(f *testing.F) {
	f.Add(200, "", []byte(`{"id":"pipe_abc123","name":"nightly"}`))
	f.Add(201, "/v1/pipelines/pipe_1", []byte(`{"id":"pipe_1"}`))
	f.Add(201, "http://[::1", []byte(`{}`))
	f.Add(202, "", []byte(`{"run_id":"run_1","status":"queued","monitor_url":"https://x/runs/run_1"}`))
	f.Add(202, "", []byte(`{"task_id":7}`))
	f.Add(200, "", []byte(`<html>gateway</html>`))
	f.Add(204, "", []byte(``))
	f.Add(404, "", []byte(`{"error":{"code":"not_found","message":"Resource not found"}}`))
	f.Fuzz(func(t *testing.T, status int, location string, body []byte) {
		if status < 200 || status > 599 || (status >= 300 && status < 400) {
			return // 1xx and redirects are net/http's business
		}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			h := http.Header{"X-Request-Id": {"req_fuzz"}}
			if location != "" {
				h.Set("Location", location)
			}
			return &http.Response{StatusCode: status, Header: h, Request: req,
				Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}, nil
		})
		c := &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: "nc_fuzz_secret",
			HTTPClient: &http.Client{Transport: &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}}}
		var out map[string]any
		meta, err := c.Do(context.Background(), "POST", "/pipelines", map[string]string{"name": "x"}, &out)
		require.False(t, err != nil && strings.Contains(err.Error(), "nc_fuzz_secret"), "the API key leaked into %q", err)
		if status >= 400 {
			var apiErr *APIError
			require.True(t, errors.As(err, &apiErr), "status %d: got %v, want an *APIError", status, err)
			require.Equal(t, status, apiErr.StatusCode, "status %d: got %v, want an *APIError", status, err)
			return
		}
		require.NotEqual(t, err == nil, meta == nil, "status %d: metadata %+v", status, meta)
		if meta != nil {
			require.Equal(t, status, meta.StatusCode, "status %d: metadata %+v", status, meta)
		}
		require.False(t, err != nil && !strings.Contains(err.Error(), "req_fuzz"), "the error %q does not name the request ID", err)
	})
}
