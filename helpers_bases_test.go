// This file holds the helpers shared by the tests of package neuracraft:
// scripted round trippers, request and response builders, the plugin
// registry's test hooks and the checks that an error reads as one clean line.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// noLeaks fails t if a goroutine started after this call still runs when
// t ends (a process-wide check: such a test is not parallel). Call it
// before anything that registers a cleanup of its own, so that the check
// runs after those. (helpers_external_test.go has the same for package
// neuracraft_test.)
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// step is one scripted answer of a scriptBase: a response or an error.
type step struct {
	status int
	header http.Header
	body   string
	err    error
}

// answer is a step that answers status with the header key-value pairs
// kv and a small error envelope.
func answer(status int, kv ...string) step {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return step{status: status, header: h, body: `{"error":{"code":"x","message":"scripted"}}`}
}

// sent is what a scriptBase received in one attempt.
type sent struct {
	at        time.Time
	method    string
	requestID string
	body      string
}

// scriptBase is a RoundTripper that answers from a script, repeating the
// last step when the script runs out, and records what it was sent.
type scriptBase struct {
	mu    sync.Mutex
	steps []step
	sent  []sent
}

func (s *scriptBase) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, sent{at: time.Now(), method: req.Method,
		requestID: req.Header.Get("X-Request-ID"), body: string(body)})
	st := s.steps[0]
	if len(s.steps) > 1 {
		s.steps = s.steps[1:]
	}
	if st.err != nil {
		return nil, st.err
	}
	return &http.Response{StatusCode: st.status, Header: st.header.Clone(),
		Body: io.NopCloser(strings.NewReader(st.body)), ContentLength: int64(len(st.body)), Request: req}, nil
}

func (s *scriptBase) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func (s *scriptBase) log() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sent(nil), s.sent...)
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// newReq is a request for method on a pipeline URL, with body when it is
// not empty.
func newReq(t *testing.T, ctx context.Context, method, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://api.neuracraft.com/v1/pipelines/pipe_1", r)
	require.NoError(t, err)
	return req
}

// half and zero are jitter sources for Transport.rand that make the jitter
// predictable.
func half() float64 { return 0.5 }

func zero() float64 { return 0 }

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

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

// bodyMessage returns error.message of a JSON payload in testdata/errors.
func bodyMessage(t *testing.T, name string) string {
	t.Helper()
	var env struct {
		Error struct{ Message string }
	}
	require.NoError(t, json.Unmarshal(readErrorFile(t, name), &env))
	return env.Error.Message
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

// tail returns the last n runes of s.
func tail(s string, n int) string {
	r := []rune(s)
	return string(r[max(len(r)-n, 0):])
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

// repeatedByte is an endless stream of one byte.
type repeatedByte byte

func (c repeatedByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
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

// netTimeoutError is a net.Error that timed out.
type netTimeoutError struct{}

func (netTimeoutError) Error() string   { return "i/o timeout" }
func (netTimeoutError) Timeout() bool   { return true }
func (netTimeoutError) Temporary() bool { return true }

// registerPluginCodesForTest registers codes and forgets them when t ends.
func registerPluginCodesForTest(t *testing.T, codes ...PluginCodeInfo) {
	t.Helper()
	require.NoError(t, RegisterPluginCodes(codes...), "RegisterPluginCodes")
	t.Cleanup(func() {
		for _, p := range codes {
			forgetPluginCode(p.Code)
		}
	})
}

// forgetPluginCode removes c from the registry, which the package itself
// never does.
func forgetPluginCode(c Code) {
	registry.mu.Lock()
	delete(registry.codes, c)
	registry.mu.Unlock()
}

// forgetPluginCodesAfter forgets codes when t ends, whatever registered
// them.
func forgetPluginCodesAfter(t *testing.T, codes ...Code) {
	t.Cleanup(func() {
		for _, c := range codes {
			forgetPluginCode(c)
		}
	})
}

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

// specRunMessage is the manual's example of a plugin failure.
const specRunMessage = "PDF Export Plugin: Failed to generate document due to invalid template."

// readRunFile returns the contents of testdata/runs/name.
func readRunFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "runs", name))
	require.NoError(t, err)
	return b
}

// mustTime parses s as RFC 3339.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// must returns v, and panics on err: for values a test cannot do without.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// runClient returns a Client of srv whose polls wait no backoff and whose
// transport makes maxAttempts attempts (0: the default), 1 ms apart.
func runClient(srv *neuracrafttest.Server, maxAttempts int) *Client {
	tr := &Transport{Retry: RetryPolicy{MaxAttempts: maxAttempts, BaseDelay: time.Millisecond}}
	return &Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: &http.Client{Transport: tr},
		rand: func() float64 { return 0 }}
}

// newRunServer starts a fake server, closed when t ends, with a pipeline.
func newRunServer(t *testing.T) (srv *neuracrafttest.Server, c *Client, pipelineID string) {
	t.Helper()
	srv = neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	c = runClient(srv, 0)
	var p struct {
		ID string `json:"id"`
	}
	_, err := c.Do(t.Context(), http.MethodPost, "/pipelines", map[string]string{"name": "invoices"}, &p)
	require.NoError(t, err)
	return srv, c, p.ID
}

// runAnswer is one answer of a runBase.
type runAnswer struct {
	status int // 0 means 200
	body   string
	header []string // key, value pairs
}

// runBase is an in-memory NeuraCraft for synctest: it answers the n-th
// request with answers[n] (the last answer repeats), with X-Request-ID
// req_<n>, and records when each request came.
type runBase struct {
	answers []runAnswer

	mu    sync.Mutex
	times []time.Time
}

func (b *runBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.times = append(b.times, time.Now())
	n := len(b.times)
	b.mu.Unlock()
	a := b.answers[min(n, len(b.answers))-1]
	h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_" + strconv.Itoa(n)}}
	for i := 0; i+1 < len(a.header); i += 2 {
		h.Set(a.header[i], a.header[i+1])
	}
	status := a.status
	if status == 0 {
		status = http.StatusOK
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: status, Header: h, Request: req,
		Body: io.NopCloser(strings.NewReader(a.body)), ContentLength: int64(len(a.body))}, nil
}

// client returns a Client on b whose jitter comes from r (nil: random).
func (b *runBase) client(r func() float64) *Client {
	return &Client{BaseURL: "https://api.neuracraft.test/v1", APIKey: "nc_key_SECRET",
		HTTPClient: &http.Client{Transport: &Transport{Base: b}}, rand: r}
}

// gaps returns the time between consecutive requests.
func (b *runBase) gaps() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d []time.Duration
	for i := 1; i < len(b.times); i++ {
		d = append(d, b.times[i].Sub(b.times[i-1]))
	}
	return d
}

// runAnswerOf is a 200 answer with a run of status and the header
// key-value pairs.
func runAnswerOf(status string, header ...string) runAnswer {
	return runAnswer{body: `{"id":"run_1","status":"` + status + `"}`, header: header}
}

// noJitter fails the test if WaitRun draws a jittered backoff.
func noJitter(t *testing.T) func() float64 {
	return func() float64 {
		assert.Fail(t, "WaitRun used the backoff, want the Retry-After")
		return 0
	}
}

// checkRunErrorClean fails unless every text field of e is clean and
// capped, and Error is one line.
func checkRunErrorClean(t *testing.T, e *RunError) {
	t.Helper()
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"RunID", e.RunID, maxRunID}, {"Reason", e.Reason, maxRunReason}, {"Message", e.Message, maxMessage},
		{"PluginID", e.PluginID, maxRunID},
	} {
		require.Equal(t, f.value, cleanText(f.value, f.max+1), "%s not clean or not capped: %q", f.name, f.value)
		require.False(t, utf8.RuneCountInString(f.value) > f.max+1, "%s not clean or not capped: %q", f.name, f.value)
	}
	require.Equal(t, e.RequestID, cleanHeaderValue(e.RequestID), "RequestID not clean: %q", e.RequestID)
	require.LessOrEqual(t, len(e.Stack), maxStackFrames, "Stack has %d entries", len(e.Stack))
	for _, l := range e.Stack {
		require.NotEmpty(t, l, "stack entry not clean or not capped: %q", l)
		require.Equal(t, l, cleanText(l, maxMessage+1), "stack entry not clean or not capped: %q", l)
		require.False(t, utf8.RuneCountInString(l) > maxMessage+1, "stack entry not clean or not capped: %q", l)
	}
	require.False(t, e.Code != 0 && !e.Code.IsPlugin(), "Code %d is not a plugin code", e.Code)
	checkOneLine(t, "Error()", e.Error())
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

// headerLog records the credentials each path was sent.
type headerLog struct {
	mu   sync.Mutex
	seen map[string][2]string // path -> X-API-Key, Authorization
}

func (l *headerLog) record(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string][2]string{}
	}
	l.seen[r.URL.Path] = [2]string{r.Header.Get("X-API-Key"), r.Header.Get("Authorization")}
}

func (l *headerLog) get(path string) ([2]string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.seen[path]
	return v, ok
}

// mustURL parses raw.
func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
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

// successAllocs is the allocations of a successful GET through tr, with
// the caller's request ID.
func successAllocs(t *testing.T, tr *Transport) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", "req_1")
	return testing.AllocsPerRun(200, func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}
