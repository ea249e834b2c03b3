// Tests of APIError: the one-line Error, what never gets printed or
// logged, its slog value, and what it matches with errors.Is and As.
// decode_test.go holds the decoding, errors_line_test.go the one-line
// format, retryable_test.go IsRetryable.

package neuracraft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAPIErrorUnwrap(t *testing.T) {
	t.Parallel()
	apiErr := apiErrorFor(t, 500, string(readErrorFile(t, "truncated.json")), "Content-Type", "application/json")
	var syntaxErr *json.SyntaxError
	assert.True(t, errors.As(apiErr, &syntaxErr), "errors.As(%v, *json.SyntaxError) = false; Err = %v", apiErr, apiErr.Err)
	ok := apiErrorFor(t, 404, string(readErrorFile(t, "not_found.json")))
	assert.Nil(t, ok.Unwrap(), "Unwrap() = %v for a well-formed body, want nil", ok.Unwrap())
}

func TestAPIErrorError(t *testing.T) {
	t.Parallel()
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
			assert.Equal(t, tt.want, tt.err(t).Error(), "Error()")
		})
	}
}

func TestAPIErrorErrorNeverPanics(t *testing.T) {
	t.Parallel()
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
			assert.True(t, strings.HasPrefix(s, "neuracraft: ") || strings.HasPrefix(s, `"neuracraft: `) || strings.HasPrefix(s, "[status="),
				"%#v printed as %q", *e, s)
			checkOneLine(t, "Error()", s)
		}
	}
}

// TestAPIErrorHoldsNoSecrets sends credentials in every place a request can
// carry them and checks that no way of printing or logging the error shows
// one.
func TestAPIErrorHoldsNoSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"sk_secret", "nc_secret", "pw_secret", "k_secret", "t_secret", "user:"}
	resp := withRequest(t, newErrorResponse(401, string(readErrorFile(t, "invalid_api_key.json")),
		"Content-Type", "application/json", "X-Request-ID", "req_auth_1"),
		http.MethodGet, "https://user:pw_secret@api.neuracraft.com/v1/x?api_key=k_secret&limit=5&token=t_secret#frag",
		"Authorization", "Bearer sk_secret", "X-API-Key", "nc_secret")
	apiErr := mustAPIError(t, resp)

	const wantURL = "https://api.neuracraft.com/v1/x?api_key=REDACTED&limit=5&token=REDACTED"
	require.Equal(t, http.MethodGet, apiErr.Method, "Method, URL = %q, %q; want GET, %q", apiErr.Method, apiErr.URL, wantURL)
	assert.Equal(t, wantURL, apiErr.URL, "Method, URL = %q, %q; want GET, %q", apiErr.Method, apiErr.URL, wantURL)

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
			assert.False(t, strings.Contains(s, secret), "%s shows %q:\n%s", how, secret, s)
		}
	}
	want := "neuracraft: GET /v1/x: 401 Unauthorized: The API key provided is invalid or has been revoked. (request req_auth_1)"
	for _, how := range []string{"Error()", "%v", "%+v", "%s", "%#v"} {
		assert.Equal(t, want, printed[how], "%s", how)
	}
	assert.Equal(t, strconv.Quote(want), printed["%q"], "%%q")

	// The JSON log holds the error as a group of its fields, limit=5 kept.
	var line struct{ Err map[string]any }
	first, _, _ := strings.Cut(logged.String(), "\n")
	require.NoError(t, json.Unmarshal([]byte(first), &line), "log line %q", first)
	wantLog := map[string]any{
		"status": 401.0, "code": 401.0, "reason": "invalid_api_key",
		"message":    "The API key provided is invalid or has been revoked.",
		"request_id": "req_auth_1", "method": "GET", "url": wantURL,
	}
	assert.Empty(t, cmp.Diff(wantLog, line.Err), "slog JSON err (-want +got)")
}

func TestAPIErrorLogValue(t *testing.T) {
	t.Parallel()
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
			require.Equal(t, slog.KindGroup, v.Kind(), "LogValue().Kind()")
			var got []string
			for _, a := range v.Group() {
				got = append(got, a.String())
			}
			assert.Empty(t, cmp.Diff(tt.want, got), "LogValue attrs (-want +got)")
		})
	}
}

func TestAPIErrorIsSentinels(t *testing.T) {
	t.Parallel()
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
				assert.Equal(t, want, errors.Is(err, s.err), "%d %s, %s: errors.Is(%s)", tt.status, apiErr.Code, how, s.name)
			}
		}
	}
}

func TestAPIErrorIsCode(t *testing.T) {
	t.Parallel()
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
			assert.Equal(t, tt.want, errors.Is(err, tt.target), "%s: errors.Is(8102 sent as 500, %v)", how, tt.target)
		}
		assert.True(t, IsPlugin(err), "%s: IsPlugin = false, want true", how)
		var got *APIError
		require.True(t, errors.As(err, &got), "%s: errors.As(*APIError) = %v, %p; want true, %p", how, errors.As(err, &got), got, apiErr)
		assert.Equal(t, apiErr, got, "%s: errors.As(*APIError) = %v, %p; want true, %p", how, errors.As(err, &got), got, apiErr)
	}
	notPlugin := apiErrorFor(t, 500, string(readErrorFile(t, "message_only.json")))
	for how, err := range wrappings(notPlugin) {
		assert.False(t, IsPlugin(err), "%s: IsPlugin(500 without code) = true", how)
	}
	for _, err := range []error{nil, errors.New("plugin failed"), io.EOF, &CooldownError{Cause: 429}} {
		assert.False(t, IsPlugin(err), "IsPlugin(%v) = true", err)
	}
	assert.True(t, IsPlugin(fmt.Errorf("x: %w", Code(8102))), "IsPlugin(wrapped Code(8102)) = false")
}

func TestCooldownErrorMatchesRateLimited(t *testing.T) {
	t.Parallel()
	cooldown := &CooldownError{Method: "POST", URL: "https://api.neuracraft.com/v1/pipelines/pipe_1/run",
		RequestID: "req_c", Host: "api.neuracraft.com", Cause: CodeServiceUnavailable, RetryAfter: 5 * time.Second}
	for how, err := range wrappings(cooldown) {
		for _, s := range sentinels {
			assert.Equal(t, s.err == ErrRateLimited, errors.Is(err, s.err), "%s: errors.Is(CooldownError, %s)", how, s.name)
		}
		var apiErr *APIError
		assert.False(t, errors.As(err, &apiErr), "%s: a CooldownError is an *APIError", how)
	}
}

// wrappings returns err as callers meet it: bare, wrapped with %w, inside
// the *url.Error of http.Client (also around a %w wrap), and joined.
func wrappings(err error) map[string]error {
	const u = "https://api.neuracraft.com/v1/pipelines/pipe_1"
	return map[string]error{
		"bare":            err,
		"fmt.Errorf":      fmt.Errorf("loading pipeline: %w", err),
		"url.Error":       &url.Error{Op: "Get", URL: u, Err: err},
		"url.Error of %w": &url.Error{Op: "Get", URL: u, Err: fmt.Errorf("attempt 2: %w", err)},
		"%w of url.Error": fmt.Errorf("sync: %w", &url.Error{Op: "Get", URL: u, Err: err}),
		"errors.Join":     errors.Join(errors.New("other"), err),
	}
}

// TestTypedNilErrors: a nil *APIError (or another of the package's error
// types) wrapped in an error, the classic mistake of returning a typed
// nil pointer as an error, makes no helper or method panic: it is no
// error of ours, retryable or not, and reads as "<nil>".
func TestTypedNilErrors(t *testing.T) {
	t.Parallel()
	for _, e := range []error{(*APIError)(nil), (*CooldownError)(nil), (*RequestError)(nil), (*RunError)(nil)} {
		t.Run(fmt.Sprintf("%T", e), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", e)
			assert.NotPanics(t, func() {
				assert.False(t, IsRetryable(err), "IsRetryable")
				assert.False(t, IsPlugin(err), "IsPlugin")
				assert.False(t, errors.Is(err, ErrRateLimited), "errors.Is(err, ErrRateLimited)")
				assert.Equal(t, "wrapped: <nil>", err.Error())
				assert.Equal(t, "<nil>", e.Error())
				if lv, ok := e.(slog.LogValuer); ok {
					assert.Equal(t, slog.KindGroup, lv.LogValue().Kind(), "LogValue")
				}
				var b strings.Builder
				slog.New(slog.NewTextHandler(&b, nil)).Error("failed", "err", e)
				assert.Contains(t, b.String(), "failed")
			})
		})
	}
}
