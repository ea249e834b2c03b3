// Tests of FromResponse (decode.go): real-looking payloads
// (testdata/errors), every payload shape, long text, bounded reads and the
// bounded reader itself, bodies left or closed, hostile request IDs, and
// arbitrary answers (FuzzFromResponse). decode_oauth_test.go has the
// OAuth 2.0 shapes, decode_bench_test.go the decoder's cost.

package neuracraft

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
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
		{"plugin_8102_bom.json", 500, []string{"Content-Type", "application/json; charset=utf-8"}, apiErrorView{ // a byte order mark before the JSON
			Code: 8102, Message: specMessage, Retryable: new(false),
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

// TestHostileRequestIDFromResponse: a response's X-Request-ID, and a
// request's when the response has none, reaches the error cleaned and
// capped; Error() stays short and one line, and a slog line stays one line.
func TestHostileRequestIDFromResponse(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileIDs {
		for _, where := range []string{"response", "request"} {
			t.Run(tt.name+"/"+where, func(t *testing.T) {
				t.Parallel()
				resp := newErrorResponse(500, `{"error":{"code":"internal","message":"boom"}}`)
				withRequest(t, resp, http.MethodGet, "https://api.neuracraft.com/v1/runs/run_1")
				if where == "response" {
					resp.Header["X-Request-Id"] = []string{tt.id}
				} else {
					resp.Request.Header["X-Request-Id"] = []string{tt.id}
				}
				checkCleanError(t, mustAPIError(t, resp), tt.want)
			})
		}
	}
}

// TestReadCapped: the bounded reader keeps at most limit bytes, says
// when there was more, and reads a body it can size in one allocation:
// one whose content length is known, or a small one (up to 511 bytes)
// without.
func TestReadCapped(t *testing.T) { // not parallel: AllocsPerRun
	errBroken := errors.New("broken")
	tests := []struct {
		name          string
		body          string
		limit, length int64 // length: the content length given, -1 unknown
		broken        bool  // the reader fails after body
		want          string
		truncated     bool
		allocs        float64 // at most; 0 means not measured
	}{
		{name: "empty, length 0", body: "", limit: 100, length: 0, want: "", allocs: 1},
		{name: "empty, unknown", body: "", limit: 100, length: -1, want: "", allocs: 1},
		{name: "small, known", body: "hello", limit: 100, length: 5, want: "hello", allocs: 1},
		{name: "small, unknown", body: "hello", limit: 100, length: -1, want: "hello", allocs: 1},
		{name: "small, length 0 (a hand-built Response)", body: "hello", limit: 100, length: 0, want: "hello", allocs: 1},
		{name: "511 bytes, unknown", body: strings.Repeat("x", 511), limit: 1 << 10, length: -1,
			want: strings.Repeat("x", 511), allocs: 1},
		{name: "4 KiB, known", body: strings.Repeat("x", 4096), limit: 1 << 20, length: 4096,
			want: strings.Repeat("x", 4096), allocs: 1},
		{name: "4 KiB, unknown", body: strings.Repeat("x", 4096), limit: 1 << 20, length: -1,
			want: strings.Repeat("x", 4096)},
		{name: "exactly the limit", body: "abcde", limit: 5, length: -1, want: "abcde"},
		{name: "one byte over", body: "abcdef", limit: 5, length: -1, want: "abcde", truncated: true},
		{name: "over, known", body: "abcdefgh", limit: 5, length: 8, want: "abcde", truncated: true},
		{name: "length says less", body: "abcdefgh", limit: 100, length: 2, want: "abcdefgh"},
		{name: "length says more", body: "ab", limit: 100, length: 1 << 40, want: "ab"},
		{name: "length says more, over", body: "abcdefgh", limit: 5, length: 1 << 40, want: "abcde", truncated: true},
		{name: "huge limit", body: "ab", limit: math.MaxInt64, length: -1, want: "ab"},
		{name: "read error", body: "abc", limit: 100, length: -1, broken: true, want: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := func() io.Reader {
				var r io.Reader = strings.NewReader(tt.body)
				if tt.broken {
					r = io.MultiReader(r, iotest.ErrReader(errBroken))
				}
				return r
			}
			body, truncated, err := readCapped(open(), tt.limit, tt.length)
			if tt.broken {
				require.ErrorIs(t, err, errBroken)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, string(body))
			assert.Equal(t, tt.truncated, truncated)
			assert.LessOrEqual(t, int64(cap(body)), max(tt.limit, 512), "capacity past the limit")
			if tt.allocs > 0 {
				r := new(strings.Reader)
				allocs := testing.AllocsPerRun(100, func() {
					r.Reset(tt.body)
					_, _, _ = readCapped(r, tt.limit, tt.length)
				})
				assert.LessOrEqual(t, allocs, tt.allocs, "allocations")
			}
		})
	}
}

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
	f.Add(481, "", "", "", "", true, []byte("0000k_secret000")) // the URL's secret echoed (found by CI's fuzzing)
	f.Add(403, "application/json", "", "k_secret", "", true, []byte(`{"error":{"message":"k_secr\u0065t","details":{"k_secret":1}}}`))

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
		if kept := body[:min(len(body), defaultMaxErrorBody)]; bytes.Contains(kept, []byte("k_secret")) || bytes.IndexByte(kept, '\\') >= 0 {
			require.NotContains(t, string(apiErr.Body), "k_secret", "Body holds the URL's secret") // replaced, or the Body dropped
		} else {
			require.True(t, bytes.HasPrefix(body, apiErr.Body), "Body of %d bytes is not the start of the %d-byte body", len(apiErr.Body), len(body))
		}
		require.Equal(t, len(body) > defaultMaxErrorBody, apiErr.Truncated, "Truncated, from a %d-byte body", len(body))
		require.EqualValues(t, 1, rb.closed, "closed the body %d times", rb.closed)
		wantID := cleanHeaderValue(requestID)
		if wantID == "" {
			wantID = "req_fuzz"
		}
		require.Equal(t, status, apiErr.StatusCode, "StatusCode %d, RequestID %q, RetryAfter %v; want RequestID %q", apiErr.StatusCode, apiErr.RequestID, apiErr.RetryAfter, wantID)
		if strings.Contains(wantID, "k_secret") {
			require.NotContains(t, apiErr.RequestID, "k_secret", "the URL's secret shows in the RequestID")
		} else {
			require.Equal(t, wantID, apiErr.RequestID, "StatusCode %d, RequestID %q, RetryAfter %v; want RequestID %q", apiErr.StatusCode, apiErr.RequestID, apiErr.RetryAfter, wantID)
		}
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

// bodyMessage returns error.message of a JSON payload in testdata/errors.
func bodyMessage(t *testing.T, name string) string {
	t.Helper()
	var env struct {
		Error struct{ Message string }
	}
	require.NoError(t, json.Unmarshal(readErrorFile(t, name), &env))
	return env.Error.Message
}

// tail returns the last n runes of s.
func tail(s string, n int) string {
	r := []rune(s)
	return string(r[max(len(r)-n, 0):])
}

// repeatedByte is an endless stream of one byte.
type repeatedByte byte

func (c repeatedByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}
