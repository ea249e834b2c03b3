// Fuzz tests for the decoders: error responses, Retry-After, and the
// Client's handling of any answer.

package neuracraft

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzFromResponse feeds FromResponse arbitrary statuses, headers
// (Content-Type, Retry-After, a hostile X-Request-ID and WWW-Authenticate)
// and bodies, seeded with every payload in testdata/errors. Whatever comes
// in, a status of 400 or more gives an *APIError with a capped body, a
// clean and capped Message, Reason and RequestID, and a short one-line
// Error; a lower status leaves the body alone.
func FuzzFromResponse(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "errors"))
	require.NoError(f, err)
	statuses := []int{400, 401, 403, 404, 429, 500, 502, 503, 504}
	contentTypes := []string{"application/json", "text/html; charset=UTF-8", "text/plain", "", "application/problem+json", "text/html; charset"}
	retryAfters := []string{"", "30", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "99999999999999999999", "soon"}
	requestIDs := []string{"", "req_01HF8ZK2", "req_1\r\nlevel=ERROR msg=forged", "\x1b[2J\x1b]0;x\x07", "\xff\xfe\u0085\u2028", strings.Repeat("r", 300)}
	challenges := []string{"", `Bearer realm="neuracraft"`,
		`Bearer realm="neuracraft", error="invalid_token", error_description="The access token expired"`,
		`Basic realm="x", Bearer error=insufficient_scope, error_description="needs \"pipeline:write\"\r\n"`,
		`Bearer error="unterminated`, "Bearer error=\"\x1b[31m\", error_description=\"" + strings.Repeat("d ", 400) + "\""}
	for i, e := range entries {
		body, err := os.ReadFile(filepath.Join("testdata", "errors", e.Name()))
		require.NoError(f, err)
		f.Add(statuses[i%len(statuses)], contentTypes[i%len(contentTypes)], retryAfters[i%len(retryAfters)],
			requestIDs[i%len(requestIDs)], challenges[i%len(challenges)], i%2 == 0, body)
	}
	f.Add(200, "application/json", "", "", "", true, []byte(`{"id":"pipe_abc123"}`))
	f.Add(302, "", "", "", "", false, []byte("moved"))
	f.Add(0, "", "", "", "", true, []byte(""))
	f.Add(-1, "", "", "", "", true, []byte("x"))
	f.Add(599, "text/plain", "5", "", "", true, []byte("\xff\xfe\n\r\x00"))
	f.Add(8102, "application/json", "", "", "", true, []byte(`{"error":{"code":8102}}`))
	f.Add(1<<40, "", "", "", "", false, []byte(`{"error":{"code":"8102","retryable":null,"details":{}}}`))
	f.Add(500, "application/json", "1", "", "", true, []byte(`{"error":{"code":"`+strings.Repeat("a ", 100)+`"}}`))
	f.Add(401, "", "", "req_\r\n", `Bearer error="invalid_token"`, true, []byte(`{"error":"invalid_client","error_description":"bad\nclient"}`))

	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter, requestID, challenge string, knownLength bool, body []byte) {
		rb := &recordingBody{r: bytes.NewReader(body)}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: rb, ContentLength: -1}
		if knownLength {
			resp.ContentLength = int64(len(body))
		}
		if contentType != "" {
			resp.Header["Content-Type"] = []string{contentType}
		}
		if retryAfter != "" {
			resp.Header["Retry-After"] = []string{retryAfter}
		}
		if requestID != "" {
			resp.Header["X-Request-Id"] = []string{requestID}
		}
		if challenge != "" {
			resp.Header["Www-Authenticate"] = []string{challenge, challenge}
		}
		req, err := http.NewRequest(http.MethodGet, "https://api.neuracraft.com/v1/pipelines/pipe_1?limit=5&api_key=k_secret", nil)
		require.NoError(t, err, err)
		req.Header.Set("X-Request-ID", "req_fuzz")
		resp.Request = req

		err = FromResponse(resp)
		if status < 400 {
			require.NoError(t, err, "status %d: FromResponse = %v, read %d bytes, closed %d times; want nil, 0, 0", status, err, rb.read, rb.closed)
			require.Zero(t, rb.read, "status %d: FromResponse = %v, read %d bytes, closed %d times; want nil, 0, 0", status, err, rb.read, rb.closed)
			require.Zero(t, rb.closed, "status %d: FromResponse = %v, read %d bytes, closed %d times; want nil, 0, 0", status, err, rb.read, rb.closed)
			return
		}
		apiErr, ok := err.(*APIError)
		require.True(t, ok, "status %d: FromResponse = %T %v, want *APIError", status, err, err)
		require.LessOrEqual(t, len(apiErr.Body), defaultMaxErrorBody, "Body from a %d-byte body", len(body))
		require.True(t, bytes.HasPrefix(body, apiErr.Body), "Body of %d bytes is not the start of the %d-byte body", len(apiErr.Body), len(body))
		require.Equal(t, len(body) > defaultMaxErrorBody, apiErr.Truncated, "Truncated, from a %d-byte body", len(body))
		require.EqualValues(t, 1, rb.closed, "closed the body %d times", rb.closed)
		wantID := cleanHeaderValue(requestID)
		if wantID == "" {
			wantID = "req_fuzz"
		}
		require.Equal(t, status, apiErr.StatusCode, "StatusCode %d, RequestID %q, RetryAfter %v; want RequestID %q", apiErr.StatusCode, apiErr.RequestID, apiErr.RetryAfter, wantID)
		require.Equal(t, wantID, apiErr.RequestID, "StatusCode %d, RequestID %q, RetryAfter %v; want RequestID %q", apiErr.StatusCode, apiErr.RequestID, apiErr.RetryAfter, wantID)
		require.False(t, apiErr.RetryAfter < 0, "StatusCode %d, RequestID %q, RetryAfter %v; want RequestID %q", apiErr.StatusCode, apiErr.RequestID, apiErr.RetryAfter, wantID)
		checkOneLine(t, "RequestID", apiErr.RequestID)
		require.LessOrEqual(t, utf8.RuneCountInString(apiErr.RequestID), maxHeaderValue, "RequestID of %d characters", utf8.RuneCountInString(apiErr.RequestID))
		if apiErr.Reason != "" {
			checkOneLine(t, "Reason", apiErr.Reason)
		}
		n := utf8.RuneCountInString(apiErr.Reason)
		require.False(t, n > maxReason, "Reason of %d runes", n)
		n = utf8.RuneCountInString(apiErr.Message)
		require.False(t, n > maxMessage, "Message of %d runes", n)
		n = utf8.RuneCountInString(apiErr.Error())
		require.False(t, n > maxLogText, "Error() of %d runes", n)
		c := apiErr.Code
		require.False(t, c != Code(status) && !c.IsPlugin() && (c < 100 || c > 599), "Code = %d for status %d", int(c), status)
		checkOneLine(t, "Message", apiErr.Message)
		checkOneLine(t, "Error()", apiErr.Error())
		require.False(t, strings.Contains(apiErr.Error(), "k_secret"), "the API key shows: %q, %q", apiErr.Error(), apiErr.URL)
		require.False(t, strings.Contains(apiErr.URL, "k_secret"), "the API key shows: %q, %q", apiErr.Error(), apiErr.URL)
	})
}

// FuzzParseRetryAfter checks that no Retry-After value gives a negative
// wait, and that delay-seconds do not depend on the clock.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 11, 26, 14, 0, 0, 0, time.UTC).Unix()
	for _, v := range []string{"", "0", "120", " 45 ", "-5", "+5", "1.5", "1e3", "soon",
		"9223372036", "9223372037", "99999999999999999999",
		"Wed, 26 Nov 2025 14:01:30 GMT", "Wednesday, 26-Nov-25 14:01:30 GMT", "Wed Nov 26 14:01:30 2025",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(v, now)
	}
	f.Add("Mon, 01 Jan 0001 00:00:00 GMT", int64(1<<62))
	f.Fuzz(func(t *testing.T, v string, unix int64) {
		at := time.Unix(unix, 0)
		d := parseRetryAfter(v, at)
		require.False(t, d < 0, "parseRetryAfter(%q, %v) = %v, negative", v, at, d)
		if s := strings.TrimSpace(v); s != "" && strings.Trim(s, "0123456789") == "" {
			require.Equal(t, d, parseRetryAfter(v, at.Add(time.Hour)), "parseRetryAfter(%q)", v)
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n < 1<<33 {
				require.Equal(t, time.Duration(n)*time.Second, d, "parseRetryAfter(%q)", v)
			}
		}
	})
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
