// Helpers for the tests of package neuracraft that build failed responses and
// check the errors made of them: responses with a status, body and header,
// the payloads of testdata/errors, FromResponse that must give an *APIError,
// a view of its decoded fields for go-cmp, a body that records its reads,
// the sentinel errors, hostile request IDs, and the checks that an error
// reads as one clean line and logs as one.

package neuracraft

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// apiErrorView is the part of an APIError that FromResponse decodes, in a
// form go-cmp prints readably.
type apiErrorView struct {
	StatusCode int
	Code       Code
	Reason     string
	Message    string
	Details    string
	Retryable  *bool
	RequestID  string
	RetryAfter time.Duration
	Body       string
	Truncated  bool
	HasErr     bool
}

// viewOf returns the apiErrorView of e.
func viewOf(e *APIError) apiErrorView {
	return apiErrorView{
		StatusCode: e.StatusCode,
		Code:       e.Code,
		Reason:     e.Reason,
		Message:    e.Message,
		Details:    string(e.Details),
		Retryable:  e.Retryable,
		RequestID:  e.RequestID,
		RetryAfter: e.RetryAfter,
		Body:       string(e.Body),
		Truncated:  e.Truncated,
		HasErr:     e.Err != nil,
	}
}

// readErrorFile returns the contents of testdata/errors/name.
func readErrorFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "errors", name))
	require.NoError(t, err)
	return data
}

// mustAPIError calls FromResponse and fails t unless it returns an *APIError.
func mustAPIError(t testing.TB, resp *http.Response) *APIError {
	t.Helper()
	err := FromResponse(resp)
	apiErr, ok := err.(*APIError)
	require.True(t, ok, "FromResponse(%d) = %T %v, want *APIError", resp.StatusCode, err, err)
	return apiErr
}

// apiErrorFor decodes a response with the status and body.
func apiErrorFor(t testing.TB, status int, body string, kv ...string) *APIError {
	t.Helper()
	return mustAPIError(t, newErrorResponse(status, body, kv...))
}

// withRequest sets resp.Request to a request for method and rawURL with the
// header key-value pairs.
func withRequest(t testing.TB, resp *http.Response, method, rawURL string, kv ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp.Request = req
	return resp
}

// checkOneLine fails t unless s is non-empty valid UTF-8 without line breaks
// or other control characters.
func checkOneLine(t testing.TB, what, s string) {
	t.Helper()
	assert.NotEmpty(t, s, what)
	assert.True(t, utf8.ValidString(s), "%s = %q, want valid UTF-8", what, s)
	assert.False(t, strings.ContainsFunc(s, func(r rune) bool {
		return r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029'
	}), "%s = %q, want one line without control characters", what, s)
}

// recordingBody is a response body that counts the bytes read from it and
// the calls to Close.
type recordingBody struct {
	r      io.Reader
	read   int64
	closed int
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

func (b *recordingBody) Close() error { b.closed++; return nil }

// newErrorResponse returns a response with the status, body and header
// key-value pairs, and no request.
func newErrorResponse(status int, body string, kv ...string) *http.Response {
	h := make(http.Header)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}

// hostileIDs are X-Request-ID values a server or proxy could send, with
// what the error must carry.
var hostileIDs = []struct {
	name, id, want string
}{
	{"CR LF", "req_1\r\nlevel=ERROR msg=\"forged entry\"", `req_1 level=ERROR msg="forged entry"`},
	{"ESC", "req_2\x1b]0;pwned\x07", "req_2]0;pwned"},
	{"C1 and invalid UTF-8", "req_3\u0085\xc0\xafend", "req_3 \uFFFDend"},
	{"1 MiB", strings.Repeat("x", 1<<20), strings.Repeat("x", maxHeaderValue-1) + "…"},
}

// checkCleanError checks that e carries the request ID want, and that its
// Error() and its slog records are one short line.
func checkCleanError(t *testing.T, e *APIError, want string) {
	t.Helper()
	assert.Equal(t, want, e.RequestID)
	msg := e.Error()
	checkOneLine(t, "Error()", msg)
	assert.LessOrEqual(t, len(msg), 400, "Error() = %q", msg)
	assert.Contains(t, msg, "(request "+want+")")
	for name, h := range map[string]func(io.Writer) slog.Handler{
		"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
		"json": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Error("call failed", "err", e)
		assert.Equal(t, 1, strings.Count(buf.String(), "\n"), "%s log of %d bytes is not one line", name, buf.Len())
		assert.LessOrEqual(t, buf.Len(), 600, "%s log", name)
	}
}

// logJSON logs err under "err" with slog's JSON handler and returns the
// decoded "err" member and the raw line.
func logJSON(t *testing.T, v any) (any, string) {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Error("call failed", "err", v)
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), buf.String())
	return rec["err"], buf.String()
}

// sentinels lists every sentinel with its name, for tables.
var sentinels = []struct {
	name string
	err  error
}{
	{"ErrBadRequest", ErrBadRequest},
	{"ErrUnauthorized", ErrUnauthorized},
	{"ErrForbidden", ErrForbidden},
	{"ErrNotFound", ErrNotFound},
	{"ErrRateLimited", ErrRateLimited},
	{"ErrInternal", ErrInternal},
	{"ErrUnavailable", ErrUnavailable},
	{"ErrPlugin", ErrPlugin},
}
