// Tests of LogValue (logvalue.go): what each error of the package, a
// wrapped client's and a foreign one logs as, redacted and capped.

package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogValueWrapClient: the error of a wrapped http.Client logs as the
// APIError's fields with a redacted URL, where slog.Any of the error
// itself logs *url.Error's text with the secret query value.
func TestLogValueWrapClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "req_42")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"Resource not found"}}`))
	}))
	defer srv.Close()

	_, err := WrapClient(nil).Get(srv.URL + "/v1/pipelines/pipe_1?api_key=QUERY_SECRET&limit=5")
	require.Error(t, err)

	// What *url.Error prints: the URL as sent, secret included.
	_, raw := logJSON(t, err)
	assert.Contains(t, raw, "QUERY_SECRET", "if url.Error stops printing the query, update README.md (Logging) and docs/errors.md")

	got, line := logJSON(t, LogValue(err))
	assert.NotContains(t, line, "QUERY_SECRET")
	want := map[string]any{
		"status": 404.0, "code": 404.0, "reason": "not_found", "message": "Resource not found",
		"request_id": "req_42", "attempts": 1.0, "method": "GET",
		"url": srv.URL + "/v1/pipelines/pipe_1?api_key=REDACTED&limit=5",
	}
	assert.Empty(t, cmp.Diff(want, got))

	// Wrapped by the caller: the group says so in "text", redacted.
	got, line = logJSON(t, LogValue(fmt.Errorf("neuracraft busy: %w", err)))
	assert.NotContains(t, line, "QUERY_SECRET")
	group, ok := got.(map[string]any)
	require.True(t, ok, line)
	assert.Equal(t, 404.0, group["status"])
	assert.Equal(t, `neuracraft busy: Get "`+srv.URL+`/v1/pipelines/pipe_1?api_key=REDACTED&limit=5": `+
		`neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: Resource not found (request req_42)`, group["text"])
}

// TestLogValueNetworkError: a network failure through a wrapped client
// logs as the RequestError's fields.
func TestLogValueNetworkError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	client := WrapClient(nil)
	client.Transport.(*Transport).Retry = RetryPolicy{MaxAttempts: 1}
	req, err := http.NewRequest("GET", "http://"+addr+"/v1/runs?token=QUERY_SECRET", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", strings.Repeat("r", 300)) // sent as is, quoted capped
	_, err = client.Do(req)
	require.Error(t, err)

	got, line := logJSON(t, LogValue(err))
	assert.NotContains(t, line, "QUERY_SECRET")
	group, ok := got.(map[string]any)
	require.True(t, ok, line)
	assert.Equal(t, "GET", group["method"])
	assert.Equal(t, "http://"+addr+"/v1/runs?token=REDACTED", group["url"])
	assert.Equal(t, strings.Repeat("r", maxHeaderValue-1)+"…", group["request_id"])
	assert.Equal(t, 1.0, group["attempts"])
	assert.Contains(t, group["error"], "connection refused")
	assert.NotContains(t, group, "text")
}

func TestLogValueCooldownAndForeign(t *testing.T) {
	t.Parallel()
	cd := &CooldownError{Method: "GET", URL: "https://api.neuracraft.com/v1/pipelines", RequestID: "req_1",
		Host: "api.neuracraft.com", Cause: 429, RetryAfter: 2 * time.Second}
	got, _ := logJSON(t, LogValue(&url.Error{Op: "Get", URL: "https://api.neuracraft.com/v1/pipelines", Err: cd}))
	assert.Empty(t, cmp.Diff(map[string]any{
		"method": "GET", "url": "https://api.neuracraft.com/v1/pipelines", "request_id": "req_1",
		"host": "api.neuracraft.com", "cause": 429.0, "retry_after": float64(2 * time.Second),
	}, got))

	// A foreign error: its text, the URL redacted, on one line.
	foreign := &url.Error{Op: "Post", URL: "https://bob:***@h/oauth/token?client_secret=QUERY_SECRET",
		Err: errors.New("tls: bad certificate\r\nInjected: yes")}
	got, line := logJSON(t, LogValue(foreign))
	assert.NotContains(t, line, "QUERY_SECRET")
	assert.NotContains(t, line, "bob")
	assert.Equal(t, `Post "https://h/oauth/token?client_secret=REDACTED": tls: bad certificate Injected: yes`, got)

	// A wrapped context error with our error inside keeps both.
	joined := joinWait(&APIError{StatusCode: 503, Code: 503, Message: "down", Attempts: 2}, context.Canceled)
	got, _ = logJSON(t, LogValue(joined))
	group := got.(map[string]any)
	assert.Equal(t, 503.0, group["status"])
	assert.Contains(t, group["text"], "retry abandoned: context canceled")

	assert.Equal(t, slog.Value{}, LogValue(nil))
}

func TestLogValueCapsText(t *testing.T) {
	t.Parallel()
	v := LogValue(errors.New(strings.Repeat("é", 5000)))
	assert.Len(t, []rune(v.String()), maxLogText) // the ellipsis within the cap
	assert.True(t, strings.HasSuffix(v.String(), "…"))
	assert.Equal(t, 1024, maxLogText, "README.md and docs/errors.md say 1024")
	assert.Equal(t, 128, maxHeaderValue, "README.md and docs/errors.md say 128")
}

// TestLogValueRunError: a failed run's error, wrapped by the caller, logs
// its fields (never its stack) and the whole line.
func TestLogValueRunError(t *testing.T) {
	t.Parallel()
	runErr := &RunError{RunID: "run_1", Code: 8102, Reason: "RUNTIME", Message: "bad template",
		PluginID: "pdf-export-1", RequestID: "req_1", Stack: []string{"STACK_FRAME"}}
	got, line := logJSON(t, LogValue(fmt.Errorf("nightly export: %w", runErr)))
	assert.NotContains(t, line, "STACK_FRAME")
	group, ok := got.(map[string]any)
	require.True(t, ok, line)
	assert.Equal(t, "run_1", group["run_id"])
	assert.Equal(t, 8102.0, group["code"])
	assert.Equal(t, "pdf-export-1", group["plugin_id"])
	assert.Contains(t, group["text"], "nightly export: neuracraft: run run_1")
}
