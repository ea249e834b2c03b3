// Tests of FromResponse: real-looking payloads (testdata/errors), every
// payload shape, long text, bounded reads, bodies left or closed, and the
// request ID.

package neuracraft

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromResponseTestdata(t *testing.T) {
	t.Parallel()
	const specMessage = "PDF Export Plugin: Failed to generate document due to invalid template."
	longMessage := []rune(bodyMessage(t, "long_message.json"))
	tests := []struct {
		file   string
		status int
		kv     []string // response header
		want   apiErrorView
	}{
		{"not_found.json", 404, []string{"Content-Type", "application/json", "X-Request-ID", "req_01HF8ZK2"}, apiErrorView{
			Code: 404, Reason: "not_found", Message: "Pipeline 'pipe_9f8e7d' not found.", RequestID: "req_01HF8ZK2"}},
		{"invalid_api_key.json", 401, []string{"Content-Type", "application/json", "WWW-Authenticate", `Bearer realm="neuracraft"`}, apiErrorView{
			Code: 401, Reason: "invalid_api_key", Message: "The API key provided is invalid or has been revoked."}},
		{"invalid_token.json", 401, []string{"Content-Type", "application/json; charset=utf-8"}, apiErrorView{
			Code: 401, Reason: "invalid_token", Message: "Access token expired at 2025-11-26T14:02:11Z. Request a new token from /oauth/token."}},
		{"insufficient_scope.json", 403, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 403, Reason: "insufficient_scope", Message: "This operation requires the pipeline:write scope."}},
		{"plugin_8102.json", 500, []string{"Content-Type", "application/json", "X-Request-ID", "req_pdf_1"}, apiErrorView{
			Code: 8102, Message: specMessage, RequestID: "req_pdf_1", Retryable: new(false),
			Details: `{"template_id": "tpl_invoice_v2", "line": 14, "reason": "unknown variable {{customer.vat}}"}`}},
		{"plugin_8102_string_code.json", 503, []string{"Content-Type", "application/json", "Retry-After", "30"}, apiErrorView{
			Code: 8102, Message: "PDF Export Plugin: renderer pool exhausted, try again shortly.",
			Details: `{"queue_depth":512}`, Retryable: new(true), RetryAfter: 30 * time.Second}},
		{"plugin_bad_types.json", 502, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 8301, Message: "Webhook Plugin: delivery to https://hooks.example.com/nc failed.",
			Details: `["timeout after 10s"]`}}, // details of any JSON type are kept
		{"nulls.json", 429, []string{"Content-Type", "application/json", "Retry-After", "3600"}, apiErrorView{
			Code: 429, Reason: "quota_exceeded", Message: "Monthly pipeline-run quota exceeded for workspace ws_42.", RetryAfter: time.Hour}},
		{"error_string.json", 400, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 400, Message: "Invalid pipeline configuration: field 'steps' must not be empty."}},
		{"message_only.json", 500, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 500, Message: "An unexpected error occurred. Please try again later."}},
		{"error_null_message.json", 503, []string{"Content-Type", "application/json", "Retry-After", "600"}, apiErrorView{
			Code: 503, Message: "Scheduled maintenance in progress until 03:00 UTC.", RetryAfter: 10 * time.Minute}},
		{"array.json", 400, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 400, Message: "Bad Request", HasErr: true}},
		{"null.json", 500, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 500, Message: "Internal Server Error"}},
		{"code_object.json", 500, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 500, Message: "PDF Export Plugin: renderer crashed."}},
		{"huge_code.json", 500, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 500, Message: "Upstream returned an unexpected code."}},
		{"negative_code.json", 400, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 400, Message: "Plugin returned a negative status."}},
		{"float_code.json", 500, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 500, Message: "PDF Export Plugin: template engine fault."}},
		{"nginx_502.html", 502, []string{"Content-Type", "text/html", "Server", "nginx/1.25.3"}, apiErrorView{
			Code: 502, Message: "Bad Gateway"}},
		{"nginx_502.html", 502, nil, apiErrorView{ // no Content-Type
			Code: 502, Message: "Bad Gateway"}},
		{"cloudflare_504.html", 504, []string{"Content-Type", "text/html; charset=UTF-8", "Server", "cloudflare", "CF-RAY", "8e2f1c4b9a7d3e21-FRA"}, apiErrorView{
			Code: 504, Message: "Gateway Timeout"}},
		{"empty.txt", 503, nil, apiErrorView{
			Code: 503, Message: "Service Unavailable"}},
		{"empty.txt", 599, nil, apiErrorView{
			Code: 599, Message: "HTTP status 599"}},
		{"envoy_503.txt", 503, []string{"Content-Type", "text/plain", "Server", "envoy"}, apiErrorView{
			Code: 503, Message: "upstream connect error or disconnect/reset before headers. reset reason: connection failure"}},
		{"truncated.json", 500, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 500, Message: "Internal Server Error", HasErr: true}},
		{"invalid_utf8.json", 400, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 400, Reason: "invalid_request", Message: "Field \"name\" contains invalid bytes: \uFFFD\uFFFD end"}},
		{"control_chars.json", 400, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 400, Reason: "template_error",
			Message: "Template render failed: line 14: unknown variable {{customer.vat}}[0m done next line"}},
		{"long_message.json", 422, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 422, Reason: "validation_failed", Message: strings.TrimRight(string(longMessage[:maxMessage-1]), " ") + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+strconv.Itoa(tt.status), func(t *testing.T) {
			body := readErrorFile(t, tt.file)
			resp := newErrorResponse(tt.status, string(body), tt.kv...)
			apiErr := mustAPIError(t, resp)

			want := tt.want
			want.StatusCode = tt.status
			want.Body = string(body)
			assert.Empty(t, cmp.Diff(want, viewOf(apiErr)), "FromResponse (-want +got)")
			assert.Empty(t, cmp.Diff(resp.Header, apiErr.Header), "Header (-response +APIError)")
			require.Empty(t, apiErr.Method, "Method, URL, Attempts = %q, %q, %d for a response without request; want zero", apiErr.Method, apiErr.URL, apiErr.Attempts)
			require.Empty(t, apiErr.URL, "Method, URL, Attempts = %q, %q, %d for a response without request; want zero", apiErr.Method, apiErr.URL, apiErr.Attempts)
			assert.Zero(t, apiErr.Attempts, "Method, URL, Attempts = %q, %q, %d for a response without request; want zero", apiErr.Method, apiErr.URL, apiErr.Attempts)
		})
	}
}

// TestFromResponseEveryPayload decodes every payload in testdata/errors
// with many statuses: always an *APIError with the whole body and a clean
// one-line message.
func TestFromResponseEveryPayload(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(filepath.Join("testdata", "errors"))
	require.NoError(t, err, err)
	require.False(t, len(entries) < 20, "testdata/errors holds %d files, want the full set", len(entries))
	for _, e := range entries {
		body := readErrorFile(t, e.Name())
		for _, status := range []int{400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 599} {
			apiErr := mustAPIError(t, newErrorResponse(status, string(body)))
			require.Equal(t, status, apiErr.StatusCode, "%s/%d: StatusCode %d, Truncated %v, Body of %d bytes; want %d, false, the %d-byte file", e.Name(), status, apiErr.StatusCode, apiErr.Truncated, len(apiErr.Body), status, len(body))
			require.True(t, bytes.Equal(apiErr.Body, body), "%s/%d: StatusCode %d, Truncated %v, Body of %d bytes; want %d, false, the %d-byte file", e.Name(), status, apiErr.StatusCode, apiErr.Truncated, len(apiErr.Body), status, len(body))
			assert.False(t, apiErr.Truncated, "%s/%d: StatusCode %d, Truncated %v, Body of %d bytes; want %d, false, the %d-byte file", e.Name(), status, apiErr.StatusCode, apiErr.Truncated, len(apiErr.Body), status, len(body))
			checkOneLine(t, e.Name()+" Message", apiErr.Message)
			checkOneLine(t, e.Name()+" Error()", apiErr.Error())
		}
	}
}

// TestFromResponseCutsLongText checks the cuts of long texts: a message is
// at most maxMessage runes and a plain-text excerpt at most 120, plus an
// ellipsis, wherever the text's spaces fall. The payloads have a space
// exactly at the cut.
func TestFromResponseCutsLongText(t *testing.T) {
	t.Parallel()
	longReason := strings.Repeat("r", 63) + " " + strings.Repeat("s", 500)
	tests := []struct {
		name   string
		resp   *http.Response
		field  func(*APIError) string
		source string
		max    int
	}{
		{"message", newErrorResponse(422, string(readErrorFile(t, "long_message_boundary.json"))),
			func(e *APIError) string { return e.Message }, bodyMessage(t, "long_message_boundary.json"), maxMessage},
		{"plain text", newErrorResponse(503, string(readErrorFile(t, "long_text_boundary.txt")), "Content-Type", "text/plain; charset=utf-8"),
			func(e *APIError) string { return e.Message }, strings.TrimSpace(string(readErrorFile(t, "long_text_boundary.txt"))), 120},
		{"reason", newErrorResponse(400, `{"error":{"code":"`+longReason+`","message":"m"}}`),
			func(e *APIError) string { return e.Reason }, longReason, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, ' ', []rune(tt.source)[tt.max-1], "the payload must have a space as rune %d", tt.max)
			got := tt.field(mustAPIError(t, tt.resp))
			assert.LessOrEqual(t, utf8.RuneCountInString(got), tt.max+1, "runes ending %q", tail(got, 40))
			assert.True(t, strings.HasSuffix(got, "…"), "%q ends without an ellipsis", tail(got, 40))
			assert.True(t, strings.HasPrefix(tt.source, strings.TrimSuffix(got, "…")), "%q is not the start of the text", tail(got, 40))
		})
	}
}

func TestFromResponseNil(t *testing.T) {
	t.Parallel()
	err := FromResponse(nil)
	assert.NotNil(t, err, "FromResponse(nil) = nil, want an error")
}

func TestFromResponseBelow400LeavesBody(t *testing.T) {
	t.Parallel()
	const payload = `{"id":"pipe_abc123","created_at":"2025-11-26T14:00:00Z"}`
	for _, status := range []int{100, 101, 200, 201, 202, 204, 301, 302, 304, 307, 399} {
		body := &recordingBody{r: strings.NewReader(payload)}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: body, ContentLength: int64(len(payload))}
		assert.NoError(t, FromResponse(resp), "FromResponse(%d)", status)
		require.Zero(t, body.read, "FromResponse(%d) read %d bytes and closed the body %d times; want neither", status, body.read, body.closed)
		assert.Zero(t, body.closed, "FromResponse(%d) read %d bytes and closed the body %d times; want neither", status, body.read, body.closed)
		got, err := io.ReadAll(resp.Body)
		assert.NoError(t, err, "after FromResponse(%d), reading the body", status)
		assert.Equal(t, payload, string(got), "after FromResponse(%d), the body", status)
	}
}

func TestFromResponseClosesBody(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 404, 429, 500, 502, 503, 504} {
		for _, payload := range []string{"", `{"error":{"code":"not_found","message":"gone"}}`, "<html>bad gateway</html>"} {
			body := &recordingBody{r: strings.NewReader(payload)}
			resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: body, ContentLength: -1}
			apiErr := mustAPIError(t, resp)
			assert.EqualValues(t, 1, body.closed, "FromResponse(%d, %q) closed the body %d times", status, payload, body.closed)
			require.Equal(t, payload, string(apiErr.Body), "FromResponse(%d, %q): Body %q, Err %v", status, payload, apiErr.Body, apiErr.Err)
			assert.Nil(t, apiErr.Err, "FromResponse(%d, %q): Body %q, Err %v", status, payload, apiErr.Body, apiErr.Err)
		}
	}
	// No body at all.
	apiErr := mustAPIError(t, &http.Response{StatusCode: 500})
	require.Nil(t, apiErr.Body, "FromResponse without body: Body %q, Message %q", apiErr.Body, apiErr.Message)
	assert.Equal(t, "Internal Server Error", apiErr.Message, "FromResponse without body: Body %q, Message %q", apiErr.Body, apiErr.Message)
}

func TestFromResponseBoundedRead(t *testing.T) {
	t.Parallel()
	const (
		size    = 50 << 20 // 50 MiB
		maxRead = defaultMaxErrorBody + 1 + 256<<10
	)
	prefix := `{"error":{"code":"payload_too_large","message":"`
	for _, contentLength := range []int64{-1, int64(len(prefix)) + size} {
		t.Run("ContentLength="+strconv.FormatInt(contentLength, 10), func(t *testing.T) {
			body := &recordingBody{r: io.MultiReader(strings.NewReader(prefix), io.LimitReader(repeatedByte('a'), size))}
			resp := newErrorResponse(500, "", "Content-Type", "application/json")
			resp.Body, resp.ContentLength = body, contentLength
			apiErr := mustAPIError(t, resp)

			require.Equal(t, defaultMaxErrorBody, len(apiErr.Body), "Body is %d bytes, Truncated %v; want %d, true", len(apiErr.Body), apiErr.Truncated, defaultMaxErrorBody)
			assert.True(t, apiErr.Truncated, "Body is %d bytes, Truncated %v; want %d, true", len(apiErr.Body), apiErr.Truncated, defaultMaxErrorBody)
			assert.True(t, strings.HasPrefix(string(apiErr.Body), prefix+"aaaa"), "Body starts %q, want the beginning of the body", apiErr.Body[:60])
			assert.False(t, body.read > maxRead, "read %d bytes of the body, want at most %d", body.read, maxRead)
			assert.EqualValues(t, 1, body.closed, "closed the body %d times", body.closed)
			// A JSON document cut by the limit is not a decoding failure.
			require.Nil(t, apiErr.Err, "Err %v, Message %q; want nil, the status text", apiErr.Err, apiErr.Message)
			assert.Equal(t, "Internal Server Error", apiErr.Message, "Err %v, Message %q; want nil, the status text", apiErr.Err, apiErr.Message)
		})
	}
}

func TestFromResponseBodyAtLimit(t *testing.T) {
	t.Parallel()
	for _, n := range []int{defaultMaxErrorBody - 1, defaultMaxErrorBody, defaultMaxErrorBody + 1, defaultMaxErrorBody + 1000} {
		body := strings.Repeat("x", n)
		apiErr := apiErrorFor(t, 503, body, "Content-Type", "text/plain")
		wantLen, wantTrunc := min(n, defaultMaxErrorBody), n > defaultMaxErrorBody
		require.Equal(t, wantLen, len(apiErr.Body), "%d-byte body: Body %d bytes, Truncated %v, Err %v; want %d, %v, nil", n, len(apiErr.Body), apiErr.Truncated, apiErr.Err, wantLen, wantTrunc)
		require.Equal(t, wantTrunc, apiErr.Truncated, "%d-byte body: Body %d bytes, Truncated %v, Err %v; want %d, %v, nil", n, len(apiErr.Body), apiErr.Truncated, apiErr.Err, wantLen, wantTrunc)
		assert.Nil(t, apiErr.Err, "%d-byte body: Body %d bytes, Truncated %v, Err %v; want %d, %v, nil", n, len(apiErr.Body), apiErr.Truncated, apiErr.Err, wantLen, wantTrunc)
	}
}

func TestFromResponseReadError(t *testing.T) {
	t.Parallel()
	partial := `{"error":{"code":"not_fo`
	body := &recordingBody{r: io.MultiReader(strings.NewReader(partial), iotest.ErrReader(io.ErrUnexpectedEOF))}
	resp := newErrorResponse(404, "", "X-Request-ID", "req_cut")
	resp.Body, resp.ContentLength = body, 200
	apiErr := mustAPIError(t, resp)
	want := apiErrorView{StatusCode: 404, Code: 404, Message: "Not Found", RequestID: "req_cut", Body: partial, HasErr: true}
	assert.Empty(t, cmp.Diff(want, viewOf(apiErr)), "FromResponse (-want +got)")
	require.True(t, errors.Is(apiErr, io.ErrUnexpectedEOF), "errors.Is(io.ErrUnexpectedEOF), errors.Is(ErrNotFound) = %v, %v; want true, true", errors.Is(apiErr, io.ErrUnexpectedEOF), errors.Is(apiErr, ErrNotFound))
	assert.True(t, errors.Is(apiErr, ErrNotFound), "errors.Is(io.ErrUnexpectedEOF), errors.Is(ErrNotFound) = %v, %v; want true, true", errors.Is(apiErr, io.ErrUnexpectedEOF), errors.Is(apiErr, ErrNotFound))
	assert.EqualValues(t, 1, body.closed, "closed the body %d times", body.closed)
}

func TestFromResponseRequestID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		respID    string
		reqID     string
		noRequest bool
		want      string
	}{
		{"response header", "req_from_server", "", false, "req_from_server"},
		{"response header wins", "req_from_server", "req_sent", false, "req_from_server"},
		{"request header", "", "req_sent", false, "req_sent"},
		{"none", "", "", false, ""},
		{"no request", "", "", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := newErrorResponse(500, "")
			if tt.respID != "" {
				resp.Header.Set("X-Request-ID", tt.respID)
			}
			if !tt.noRequest {
				withRequest(t, resp, http.MethodGet, "https://api.neuracraft.com/v1/runs/run_1")
				if tt.reqID != "" {
					resp.Request.Header.Set("X-Request-ID", tt.reqID)
				}
			}
			assert.Equal(t, tt.want, mustAPIError(t, resp).RequestID, "RequestID")
		})
	}
}

// TestFromResponseIgnoresSuccessCodesInBody: a failure's body code is taken
// only when it is a failure status or a plugin code.
func TestFromResponseIgnoresSuccessCodesInBody(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"200", `"201"`, "302", "100"} {
		err := FromResponse(&http.Response{StatusCode: 500, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(`{"error":{"code":` + code + `,"message":"x"}}`))})
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, CodeInternalServerError, apiErr.Code, code)
		assert.False(t, errors.Is(err, CodeOK), code)
	}
}
