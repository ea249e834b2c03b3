// Tests for APIError: decoding the payloads in testdata/errors, reading
// bodies within bounds, Retry-After, request IDs, the one-line Error, what
// never gets printed or logged, and the errors.Is / IsRetryable rules.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromResponseTestdata(t *testing.T) {
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
			Code: 8102, Message: specMessage, RequestID: "req_pdf_1", RetryHint: new(false),
			Details: `{"template_id": "tpl_invoice_v2", "line": 14, "reason": "unknown variable {{customer.vat}}"}`}},
		{"plugin_8102_string_code.json", 503, []string{"Content-Type", "application/json", "Retry-After", "30"}, apiErrorView{
			Code: 8102, Message: "PDF Export Plugin: renderer pool exhausted, try again shortly.",
			Details: `{"queue_depth":512}`, RetryHint: new(true), RetryAfter: 30 * time.Second}},
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
			Message: "Template render failed: line 14: unknown variable {{customer.vat}} [0m done next line"}},
		{"long_message.json", 422, []string{"Content-Type", "application/json"}, apiErrorView{
			Code: 422, Reason: "validation_failed", Message: string(longMessage[:maxMessage]) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+strconv.Itoa(tt.status), func(t *testing.T) {
			body := readErrorFile(t, tt.file)
			resp := newErrorResponse(tt.status, string(body), tt.kv...)
			apiErr := mustAPIError(t, resp)

			want := tt.want
			want.StatusCode = tt.status
			want.Body = string(body)
			if diff := cmp.Diff(want, viewOf(apiErr)); diff != "" {
				t.Errorf("FromResponse (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(resp.Header, apiErr.Header); diff != "" {
				t.Errorf("Header (-response +APIError):\n%s", diff)
			}
			if apiErr.Method != "" || apiErr.URL != "" || apiErr.Attempts != 0 {
				t.Errorf("Method, URL, Attempts = %q, %q, %d for a response without request; want zero",
					apiErr.Method, apiErr.URL, apiErr.Attempts)
			}
		})
	}
}

// TestFromResponseEveryPayload decodes every payload in testdata/errors
// with many statuses: always an *APIError with the whole body and a clean
// one-line message.
func TestFromResponseEveryPayload(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "errors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 20 {
		t.Fatalf("testdata/errors holds %d files, want the full set", len(entries))
	}
	for _, e := range entries {
		body := readErrorFile(t, e.Name())
		for _, status := range []int{400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 599} {
			apiErr := mustAPIError(t, newErrorResponse(status, string(body)))
			if apiErr.StatusCode != status || !bytes.Equal(apiErr.Body, body) || apiErr.Truncated {
				t.Errorf("%s/%d: StatusCode %d, Truncated %v, Body of %d bytes; want %d, false, the %d-byte file",
					e.Name(), status, apiErr.StatusCode, apiErr.Truncated, len(apiErr.Body), status, len(body))
			}
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
			if []rune(tt.source)[tt.max-1] != ' ' {
				t.Fatalf("the payload must have a space as rune %d", tt.max)
			}
			got := tt.field(mustAPIError(t, tt.resp))
			if n := utf8.RuneCountInString(got); n > tt.max+1 || !strings.HasSuffix(got, "…") ||
				!strings.HasPrefix(tt.source, strings.TrimSuffix(got, "…")) {
				t.Errorf("got %d runes ending %q; want at most %d runes of the text and an ellipsis", n, tail(got, 40), tt.max+1)
			}
		})
	}
}

func TestFromResponseNil(t *testing.T) {
	if err := FromResponse(nil); err == nil {
		t.Error("FromResponse(nil) = nil, want an error")
	}
}

func TestFromResponseBelow400LeavesBody(t *testing.T) {
	const payload = `{"id":"pipe_abc123","created_at":"2025-11-26T14:00:00Z"}`
	for _, status := range []int{100, 101, 200, 201, 202, 204, 301, 302, 304, 307, 399} {
		body := &recordingBody{r: strings.NewReader(payload)}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: body, ContentLength: int64(len(payload))}
		if err := FromResponse(resp); err != nil {
			t.Errorf("FromResponse(%d) = %v, want nil", status, err)
		}
		if body.read != 0 || body.closed != 0 {
			t.Errorf("FromResponse(%d) read %d bytes and closed the body %d times; want neither", status, body.read, body.closed)
		}
		if got, err := io.ReadAll(resp.Body); err != nil || string(got) != payload {
			t.Errorf("after FromResponse(%d), the body reads %q, %v; want the payload", status, got, err)
		}
	}
}

func TestFromResponseClosesBody(t *testing.T) {
	for _, status := range []int{400, 401, 404, 429, 500, 502, 503, 504} {
		for _, payload := range []string{"", `{"error":{"code":"not_found","message":"gone"}}`, "<html>bad gateway</html>"} {
			body := &recordingBody{r: strings.NewReader(payload)}
			resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: body, ContentLength: -1}
			apiErr := mustAPIError(t, resp)
			if body.closed != 1 {
				t.Errorf("FromResponse(%d, %q) closed the body %d times, want once", status, payload, body.closed)
			}
			if string(apiErr.Body) != payload || apiErr.Err != nil {
				t.Errorf("FromResponse(%d, %q): Body %q, Err %v", status, payload, apiErr.Body, apiErr.Err)
			}
		}
	}
	// No body at all.
	apiErr := mustAPIError(t, &http.Response{StatusCode: 500})
	if apiErr.Body != nil || apiErr.Message != "Internal Server Error" {
		t.Errorf("FromResponse without body: Body %q, Message %q", apiErr.Body, apiErr.Message)
	}
}

func TestFromResponseBoundedRead(t *testing.T) {
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

			if len(apiErr.Body) != defaultMaxErrorBody || !apiErr.Truncated {
				t.Errorf("Body is %d bytes, Truncated %v; want %d, true", len(apiErr.Body), apiErr.Truncated, defaultMaxErrorBody)
			}
			if !strings.HasPrefix(string(apiErr.Body), prefix+"aaaa") {
				t.Errorf("Body starts %q, want the beginning of the body", apiErr.Body[:60])
			}
			if body.read > maxRead {
				t.Errorf("read %d bytes of the body, want at most %d", body.read, maxRead)
			}
			if body.closed != 1 {
				t.Errorf("closed the body %d times, want once", body.closed)
			}
			// A JSON document cut by the limit is not a decoding failure.
			if apiErr.Err != nil || apiErr.Message != "Internal Server Error" {
				t.Errorf("Err %v, Message %q; want nil, the status text", apiErr.Err, apiErr.Message)
			}
		})
	}
}

func TestFromResponseBodyAtLimit(t *testing.T) {
	for _, n := range []int{defaultMaxErrorBody - 1, defaultMaxErrorBody, defaultMaxErrorBody + 1, defaultMaxErrorBody + 1000} {
		body := strings.Repeat("x", n)
		apiErr := apiErrorFor(t, 503, body, "Content-Type", "text/plain")
		wantLen, wantTrunc := min(n, defaultMaxErrorBody), n > defaultMaxErrorBody
		if len(apiErr.Body) != wantLen || apiErr.Truncated != wantTrunc || apiErr.Err != nil {
			t.Errorf("%d-byte body: Body %d bytes, Truncated %v, Err %v; want %d, %v, nil",
				n, len(apiErr.Body), apiErr.Truncated, apiErr.Err, wantLen, wantTrunc)
		}
	}
}

func TestFromResponseReadError(t *testing.T) {
	partial := `{"error":{"code":"not_fo`
	body := &recordingBody{r: io.MultiReader(strings.NewReader(partial), iotest.ErrReader(io.ErrUnexpectedEOF))}
	resp := newErrorResponse(404, "", "X-Request-ID", "req_cut")
	resp.Body, resp.ContentLength = body, 200
	apiErr := mustAPIError(t, resp)
	want := apiErrorView{StatusCode: 404, Code: 404, Message: "Not Found", RequestID: "req_cut", Body: partial, HasErr: true}
	if diff := cmp.Diff(want, viewOf(apiErr)); diff != "" {
		t.Errorf("FromResponse (-want +got):\n%s", diff)
	}
	if !errors.Is(apiErr, io.ErrUnexpectedEOF) || !errors.Is(apiErr, ErrNotFound) {
		t.Errorf("errors.Is(io.ErrUnexpectedEOF), errors.Is(ErrNotFound) = %v, %v; want true, true",
			errors.Is(apiErr, io.ErrUnexpectedEOF), errors.Is(apiErr, ErrNotFound))
	}
	if body.closed != 1 {
		t.Errorf("closed the body %d times, want once", body.closed)
	}
}

func TestAPIErrorUnwrap(t *testing.T) {
	apiErr := apiErrorFor(t, 500, string(readErrorFile(t, "truncated.json")), "Content-Type", "application/json")
	var syntaxErr *json.SyntaxError
	if !errors.As(apiErr, &syntaxErr) {
		t.Errorf("errors.As(%v, *json.SyntaxError) = false; Err = %v", apiErr, apiErr.Err)
	}
	if ok := apiErrorFor(t, 404, string(readErrorFile(t, "not_found.json"))); ok.Unwrap() != nil {
		t.Errorf("Unwrap() = %v for a well-formed body, want nil", ok.Unwrap())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 26, 14, 0, 0, 0, time.UTC)
	const maxDur = time.Duration(math.MaxInt64)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"120", 2 * time.Minute},
		{" 45 ", 45 * time.Second},
		{"007", 7 * time.Second},
		{"-5", 0},
		{"+5", 0},
		{"1.5", 0},
		{"120abc", 0},
		{"soon", 0},
		{"9223372036", 9223372036 * time.Second}, // the longest whole-second Duration
		{"9223372037", maxDur},
		{"99999999999999999999999", maxDur},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Wednesday, 26-Nov-25 14:01:30 GMT", 90 * time.Second}, // RFC 850
		{"Wed Nov 26 14:01:30 2025", 90 * time.Second},          // ANSI C asctime
		{now.Format(http.TimeFormat), 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxDur},
		{"Wed, 26 Nov 2025 14:01:30", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFromResponseRetryAfter(t *testing.T) {
	now := time.Now()
	tests := []struct {
		header   string
		min, max time.Duration
	}{
		{"120", 120 * time.Second, 120 * time.Second},
		{now.Add(time.Hour).UTC().Format(http.TimeFormat), time.Hour - time.Minute, time.Hour},
		{now.Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
		{"-30", 0, 0},
		{"in a minute", 0, 0},
		{"99999999999999999999", math.MaxInt64, math.MaxInt64},
	}
	for _, tt := range tests {
		apiErr := apiErrorFor(t, 429, `{"error":{"code":"rate_limited","message":"Rate limit exceeded."}}`, "Retry-After", tt.header)
		if apiErr.RetryAfter < tt.min || apiErr.RetryAfter > tt.max {
			t.Errorf("Retry-After %q: RetryAfter = %v, want %v to %v", tt.header, apiErr.RetryAfter, tt.min, tt.max)
		}
	}
	if got := apiErrorFor(t, 429, "").RetryAfter; got != 0 {
		t.Errorf("without Retry-After: RetryAfter = %v, want 0", got)
	}
}

func TestFromResponseRequestID(t *testing.T) {
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
			if got := mustAPIError(t, resp).RequestID; got != tt.want {
				t.Errorf("RequestID = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAPIErrorError(t *testing.T) {
	const api = "https://api.neuracraft.com/v1"
	tests := []struct {
		name string
		err  func(t *testing.T) *APIError
		want string
	}{
		{"with request", func(t *testing.T) *APIError {
			return mustAPIError(t, withRequest(t, newErrorResponse(404,
				`{"error":{"code":"not_found","message":"Resource not found"}}`, "X-Request-ID", "req_abc123"),
				http.MethodGet, api+"/pipelines/pipe_1"))
		}, "neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: Resource not found (request req_abc123)"},
		{"plugin code sent as 500", func(t *testing.T) *APIError {
			return mustAPIError(t, withRequest(t, newErrorResponse(500,
				`{"error":{"code":8990,"message":"PDF Export Plugin: Failed to generate document due to invalid template."}}`,
				"X-Request-ID", "req_p1"),
				http.MethodPost, api+"/pipelines/pipe_1/run"))
		}, "neuracraft: POST /v1/pipelines/pipe_1/run: 8990 Plugin Error: PDF Export Plugin: Failed to generate document due to invalid template. (HTTP 500, request req_p1)"},
		{"message equal to name", func(t *testing.T) *APIError {
			return mustAPIError(t, withRequest(t, newErrorResponse(503, ""),
				http.MethodGet, api+"/runs/run_1", "X-Request-ID", "req_sent"))
		}, "neuracraft: GET /v1/runs/run_1: 503 Service Unavailable (request req_sent)"},
		{"several attempts, query left out", func(t *testing.T) *APIError {
			e := mustAPIError(t, withRequest(t, newErrorResponse(429,
				`{"error":{"code":"rate_limited","message":"Rate limit exceeded for workspace ws_42."}}`,
				"X-Request-ID", "req_rl", "Retry-After", "30"),
				http.MethodGet, api+"/pipelines?limit=10&offset=20"))
			e.Attempts = 3
			return e
		}, "neuracraft: GET /v1/pipelines: 429 Too Many Requests: Rate limit exceeded for workspace ws_42. (request req_rl, 3 attempts)"},
		{"one attempt", func(t *testing.T) *APIError {
			e := apiErrorFor(t, 403, string(readErrorFile(t, "insufficient_scope.json")))
			e.Attempts = 1
			return e
		}, "neuracraft: 403 Forbidden: This operation requires the pipeline:write scope."},
		{"no request", func(t *testing.T) *APIError {
			return apiErrorFor(t, 401, string(readErrorFile(t, "invalid_api_key.json")), "X-Request-ID", "req_k")
		}, "neuracraft: 401 Unauthorized: The API key provided is invalid or has been revoked. (request req_k)"},
		{"gateway page", func(t *testing.T) *APIError {
			return apiErrorFor(t, 502, string(readErrorFile(t, "nginx_502.html")), "Content-Type", "text/html")
		}, "neuracraft: 502 Bad Gateway"},
		{"body code differs from status", func(t *testing.T) *APIError {
			return apiErrorFor(t, 500, `{"error":{"code":404,"message":"Model missing"}}`)
		}, "neuracraft: 404 Not Found: Model missing (HTTP 500)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err(t).Error(); got != tt.want {
				t.Errorf("Error() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestAPIErrorErrorNeverPanics(t *testing.T) {
	for _, e := range []*APIError{
		{},
		{StatusCode: 500},
		{Code: 8102},
		{Method: "GET"},
		{URL: "https://api.neuracraft.com/v1/x"},
		{URL: "%zz not a URL"},
		{Method: "GET", URL: "::"},
		{Attempts: -1, RetryAfter: -1},
	} {
		for _, s := range []string{e.Error(), fmt.Sprint(e), fmt.Sprintf("%+v %q %#v", e, e, e), slog.AnyValue(e).Resolve().String()} {
			if !strings.HasPrefix(s, "neuracraft: ") && !strings.HasPrefix(s, `"neuracraft: `) && !strings.HasPrefix(s, "[status=") {
				t.Errorf("%#v printed as %q", *e, s)
			}
			checkOneLine(t, "Error()", s)
		}
	}
}

// TestAPIErrorHoldsNoSecrets sends credentials in every place a request can
// carry them and checks that no way of printing or logging the error shows
// one.
func TestAPIErrorHoldsNoSecrets(t *testing.T) {
	secrets := []string{"sk_secret", "nc_secret", "pw_secret", "k_secret", "t_secret", "user:"}
	resp := withRequest(t, newErrorResponse(401, string(readErrorFile(t, "invalid_api_key.json")),
		"Content-Type", "application/json", "X-Request-ID", "req_auth_1"),
		http.MethodGet, "https://user:pw_secret@api.neuracraft.com/v1/x?api_key=k_secret&limit=5&token=t_secret#frag",
		"Authorization", "Bearer sk_secret", "X-API-Key", "nc_secret")
	apiErr := mustAPIError(t, resp)

	const wantURL = "https://api.neuracraft.com/v1/x?api_key=REDACTED&limit=5&token=REDACTED"
	if apiErr.Method != http.MethodGet || apiErr.URL != wantURL {
		t.Errorf("Method, URL = %q, %q; want GET, %q", apiErr.Method, apiErr.URL, wantURL)
	}

	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Error("neuracraft call failed", "err", apiErr)
	logger.Error("neuracraft call failed", slog.Any("err", fmt.Errorf("syncing: %w", apiErr)))
	logger.Warn("neuracraft call failed", "err", apiErr.LogValue())

	printed := map[string]string{
		"Error()":    apiErr.Error(),
		"%v":         fmt.Sprintf("%v", apiErr),
		"%+v":        fmt.Sprintf("%+v", apiErr),
		"%s":         fmt.Sprintf("%s", apiErr),
		"%q":         fmt.Sprintf("%q", apiErr),
		"%#v":        fmt.Sprintf("%#v", apiErr),
		"%#v struct": fmt.Sprintf("%#v", *apiErr), // every field, Header and Body included
		"wrapped %v": fmt.Sprintf("%v", fmt.Errorf("syncing: %w", apiErr)),
		"slog JSON":  logged.String(),
	}
	for how, s := range printed {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows %q:\n%s", how, secret, s)
			}
		}
	}
	want := "neuracraft: GET /v1/x: 401 Unauthorized: The API key provided is invalid or has been revoked. (request req_auth_1)"
	for _, how := range []string{"Error()", "%v", "%+v", "%s", "%#v"} {
		if printed[how] != want {
			t.Errorf("%s = %q, want %q", how, printed[how], want)
		}
	}
	if got := printed["%q"]; got != strconv.Quote(want) {
		t.Errorf("%%q = %s, want %s", got, strconv.Quote(want))
	}

	// The JSON log holds the error as a group of its fields, limit=5 kept.
	var line struct{ Err map[string]any }
	first, _, _ := strings.Cut(logged.String(), "\n")
	if err := json.Unmarshal([]byte(first), &line); err != nil {
		t.Fatalf("log line %q: %v", first, err)
	}
	wantLog := map[string]any{
		"status": 401.0, "code": 401.0, "reason": "invalid_api_key",
		"message":    "The API key provided is invalid or has been revoked.",
		"request_id": "req_auth_1", "method": "GET", "url": wantURL,
	}
	if diff := cmp.Diff(wantLog, line.Err); diff != "" {
		t.Errorf("slog JSON err (-want +got):\n%s", diff)
	}
}

func TestAPIErrorLogValue(t *testing.T) {
	full := mustAPIError(t, withRequest(t, newErrorResponse(429,
		`{"error":{"code":"rate_limited","message":"Rate limit exceeded for workspace ws_42."}}`,
		"X-Request-ID", "req_rl", "Retry-After", "30"),
		http.MethodGet, "https://api.neuracraft.com/v1/pipelines?limit=10"))
	full.Attempts = 3
	bare := apiErrorFor(t, 502, string(readErrorFile(t, "nginx_502.html")), "Content-Type", "text/html")
	tests := []struct {
		name string
		err  *APIError
		want []string
	}{
		{"full", full, []string{"status=429", "code=429", "reason=rate_limited",
			"message=Rate limit exceeded for workspace ws_42.", "request_id=req_rl", "retry_after=30s",
			"attempts=3", "method=GET", "url=https://api.neuracraft.com/v1/pipelines?limit=10"}},
		{"plugin", apiErrorFor(t, 500, string(readErrorFile(t, "plugin_8102.json"))), []string{"status=500", "code=8102",
			"message=PDF Export Plugin: Failed to generate document due to invalid template."}},
		{"bare", bare, []string{"status=502", "code=502", "message=Bad Gateway"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.err.LogValue()
			if v.Kind() != slog.KindGroup {
				t.Fatalf("LogValue().Kind() = %v, want Group", v.Kind())
			}
			var got []string
			for _, a := range v.Group() {
				got = append(got, a.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LogValue attrs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIErrorIsSentinels(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   []error
	}{
		{400, "", []error{ErrBadRequest}},
		{401, string(readErrorFile(t, "invalid_token.json")), []error{ErrUnauthorized}},
		{403, string(readErrorFile(t, "insufficient_scope.json")), []error{ErrForbidden}},
		{404, string(readErrorFile(t, "not_found.json")), []error{ErrNotFound}},
		{409, "", nil},
		{429, "", []error{ErrRateLimited}},
		{500, "", []error{ErrInternal}},
		{502, string(readErrorFile(t, "nginx_502.html")), nil},
		{503, "", []error{ErrUnavailable}},
		{504, string(readErrorFile(t, "cloudflare_504.html")), nil},
		{500, string(readErrorFile(t, "plugin_8102.json")), []error{ErrPlugin, ErrInternal}},
		{503, string(readErrorFile(t, "plugin_8102_string_code.json")), []error{ErrPlugin, ErrUnavailable}},
		{400, `{"error":{"code":8000,"message":"lowest plugin code"}}`, []error{ErrPlugin, ErrBadRequest}},
		{502, `{"error":{"code":8999,"message":"highest plugin code"}}`, []error{ErrPlugin}},
		{500, `{"error":{"code":7999,"message":"not a plugin code"}}`, []error{ErrInternal}},
		{500, `{"error":{"code":404,"message":"model missing"}}`, []error{ErrNotFound, ErrInternal}},
	}
	for _, tt := range tests {
		apiErr := apiErrorFor(t, tt.status, tt.body)
		for how, err := range wrappings(apiErr) {
			for _, s := range sentinels {
				want := slices.Contains(tt.want, s.err)
				if got := errors.Is(err, s.err); got != want {
					t.Errorf("%d %s, %s: errors.Is(%s) = %v, want %v", tt.status, apiErr.Code, how, s.name, got, want)
				}
			}
		}
	}
}

func TestAPIErrorIsCode(t *testing.T) {
	apiErr := apiErrorFor(t, 500, string(readErrorFile(t, "plugin_8102.json")))
	tests := []struct {
		target error
		want   bool
	}{
		{Code(8102), true},
		{CodeInternalServerError, true},
		{ErrPlugin, true},
		{ErrInternal, true},
		{Code(8103), false},
		{CodeServiceUnavailable, false},
		{ErrUnavailable, false},
		{ErrNotFound, false},
		{&APIError{StatusCode: 500, Code: 8102}, false}, // an equal value is not the same error
	}
	for how, err := range wrappings(apiErr) {
		for _, tt := range tests {
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("%s: errors.Is(8102 sent as 500, %v) = %v, want %v", how, tt.target, got, tt.want)
			}
		}
		if !IsPlugin(err) {
			t.Errorf("%s: IsPlugin = false, want true", how)
		}
		var got *APIError
		if !errors.As(err, &got) || got != apiErr {
			t.Errorf("%s: errors.As(*APIError) = %v, %p; want true, %p", how, errors.As(err, &got), got, apiErr)
		}
	}
	notPlugin := apiErrorFor(t, 500, string(readErrorFile(t, "message_only.json")))
	for how, err := range wrappings(notPlugin) {
		if IsPlugin(err) {
			t.Errorf("%s: IsPlugin(500 without code) = true", how)
		}
	}
	for _, err := range []error{nil, errors.New("plugin failed"), io.EOF, &CooldownError{Cause: 429}} {
		if IsPlugin(err) {
			t.Errorf("IsPlugin(%v) = true", err)
		}
	}
	if !IsPlugin(fmt.Errorf("x: %w", Code(8102))) {
		t.Error("IsPlugin(wrapped Code(8102)) = false")
	}
}

func (netTimeoutError) Error() string   { return "i/o timeout" }
func (netTimeoutError) Timeout() bool   { return true }
func (netTimeoutError) Temporary() bool { return true }

func TestIsRetryable(t *testing.T) {
	registerPluginCodesForTest(t,
		PluginCodeInfo{Code: 8960, Name: "Index Rebuilding", Retryable: true},
		PluginCodeInfo{Code: 8961, Name: "Template Invalid"})
	api := func(status int, body string) error { return apiErrorFor(t, status, body) }
	const u = "https://api.neuracraft.com/v1/pipelines"
	opErr := func(op string, err error) error { return &net.OpError{Op: op, Net: "tcp", Err: err} }
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: u, Err: err} }
	cooldown := &CooldownError{Method: "GET", URL: u, RequestID: "req_c", Host: "api.neuracraft.com",
		Cause: CodeTooManyRequests, RetryAfter: 20 * time.Second}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"400", api(400, ""), false},
		{"401", api(401, string(readErrorFile(t, "invalid_api_key.json"))), false},
		{"403", api(403, string(readErrorFile(t, "insufficient_scope.json"))), false},
		{"404", api(404, string(readErrorFile(t, "not_found.json"))), false},
		{"409", api(409, ""), false},
		{"422", api(422, ""), false},
		{"429", api(429, ""), true},
		{"500", api(500, ""), true},
		{"502", api(502, string(readErrorFile(t, "nginx_502.html"))), true},
		{"503", api(503, ""), true},
		{"504", api(504, string(readErrorFile(t, "cloudflare_504.html"))), true},
		{"400 body says retryable", api(400, `{"error":{"code":"busy","message":"m","retryable":true}}`), true},
		{"503 body says not retryable", api(503, `{"error":{"code":"maintenance","message":"m","retryable":false}}`), false},
		{"500 plugin says not retryable", api(500, string(readErrorFile(t, "plugin_8102.json"))), false},
		{"503 plugin says retryable", api(503, string(readErrorFile(t, "plugin_8102_string_code.json"))), true},
		{"registered retryable plugin, 400", api(400, `{"error":{"code":8960,"message":"m"}}`), true},
		{"registered non-retryable plugin, 503", api(503, `{"error":{"code":8961,"message":"m"}}`), false},
		{"unregistered plugin, 429", api(429, `{"error":{"code":8992,"message":"m"}}`), true},
		{"unregistered plugin, 503", api(503, `{"error":{"code":8992,"message":"m"}}`), true},
		{"unregistered plugin, 500", api(500, `{"error":{"code":8992,"message":"m"}}`), false},
		{"unregistered plugin, 502", api(502, `{"error":{"code":"8992","message":"m"}}`), false},
		{"unregistered plugin, 400", api(400, `{"error":{"code":8992,"message":"m"}}`), false},
		{"500 in url.Error", urlErr(api(500, "")), true},
		{"404 in url.Error", urlErr(api(404, "")), false},
		{"503 wrapped twice", fmt.Errorf("sync: %w", urlErr(fmt.Errorf("attempt 5: %w", api(503, "")))), true},

		{"nil", nil, false},
		{"plain error", errors.New("pipeline config invalid"), false},
		{"io.EOF", io.EOF, true},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF, true},
		{"EOF in url.Error", urlErr(io.EOF), true},
		{"ECONNRESET", urlErr(opErr("read", os.NewSyscallError("read", syscall.ECONNRESET))), true},
		{"ECONNREFUSED", urlErr(opErr("dial", os.NewSyscallError("connect", syscall.ECONNREFUSED))), true},
		{"net.Error timeout", netTimeoutError{}, true},
		{"timeout in url.Error", urlErr(opErr("read", os.ErrDeadlineExceeded)), true},
		{"timeout wrapped with %w in url.Error", // as http.Client returns a network failure from Transport
			urlErr(fmt.Errorf("neuracraft: GET /v1/pipelines (request r1, attempt 1): %w", opErr("read", os.ErrDeadlineExceeded))), true},
		{"net.Error without timeout", urlErr(opErr("read", errors.New("protocol error"))), false},
		{"DNS timeout", &net.DNSError{Err: "timeout", Name: "api.neuracraft.com", IsTimeout: true}, true},
		{"DNS no such host", urlErr(opErr("dial", &net.DNSError{Err: "no such host", Name: "api.neuracraft.com", IsNotFound: true})), false},
		{"context.Canceled", context.Canceled, false},
		{"context.DeadlineExceeded", context.DeadlineExceeded, false},
		{"Canceled in url.Error", urlErr(context.Canceled), false},
		{"DeadlineExceeded in url.Error", urlErr(context.DeadlineExceeded), false},
		{"503, then cancelled while waiting", fmt.Errorf("%w; retry abandoned: %w", api(503, ""), context.Canceled), false},
		{"CooldownError", cooldown, true},
		{"CooldownError in url.Error", urlErr(cooldown), true},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("%s: IsRetryable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestCooldownErrorMatchesRateLimited(t *testing.T) {
	cooldown := &CooldownError{Method: "POST", URL: "https://api.neuracraft.com/v1/pipelines/pipe_1/run",
		RequestID: "req_c", Host: "api.neuracraft.com", Cause: CodeServiceUnavailable, RetryAfter: 5 * time.Second}
	for how, err := range wrappings(cooldown) {
		for _, s := range sentinels {
			if got, want := errors.Is(err, s.err), s.err == ErrRateLimited; got != want {
				t.Errorf("%s: errors.Is(CooldownError, %s) = %v, want %v", how, s.name, got, want)
			}
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			t.Errorf("%s: a CooldownError is an *APIError", how)
		}
	}
}

// TestFromResponseIgnoresSuccessCodesInBody: a failure's body code is taken
// only when it is a failure status or a plugin code.
func TestFromResponseIgnoresSuccessCodesInBody(t *testing.T) {
	for _, code := range []string{"200", `"201"`, "302", "100"} {
		err := FromResponse(&http.Response{StatusCode: 500, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(`{"error":{"code":` + code + `,"message":"x"}}`))})
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, CodeInternalServerError, apiErr.Code, code)
		assert.False(t, errors.Is(err, CodeOK), code)
	}
}

// TestIsRetryableAttemptTimeouts: net/http makes an attempt's own timeout
// (here ResponseHeaderTimeout) match context.DeadlineExceeded, but it is a
// timeout of one attempt and retryable; the caller's deadline is not.
func TestIsRetryableAttemptTimeouts(t *testing.T) {
	tr := &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}
	defer tr.CloseIdleConnections()
	stall := make(chan struct{}) // the server sends no headers until closed
	raw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer raw.Close()
	defer close(stall)

	_, err := (&http.Client{Transport: tr}).Get(raw.URL)
	require.Error(t, err)
	require.ErrorIs(t, err, context.DeadlineExceeded, "net/http's own matching, which IsRetryable must see past")
	assert.True(t, IsRetryable(err))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", raw.URL, nil)
	_, err = (&http.Client{Transport: &http.Transport{}}).Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, IsRetryable(err), "the caller's deadline is not retryable")
}
