// Tests of the one cleaning rule (redact.go): what it folds, drops and
// cuts, its fast path for clean text, server header values, that every
// cap is exact with the ellipsis inside it, and that every text an error
// prints or logs goes through it, a cause's text included; and the secret
// query values redactURL hides.

package neuracraft

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCleanTextRule: one rule for white space, control and bidirectional
// characters and invalid UTF-8, counted and cut in characters.
func TestCleanTextRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		max      int
		want     string
	}{
		{"clean", "Resource not found", 300, "Resource not found"},
		{"white space folds", " a \t\r\n b\u00a0\u2028c\u0085d ", 300, "a b c d"},
		{"controls dropped", "a\x00b\x1b[31mc\x7fd\u009be", 300, "ab[31mcde"},
		{"every bidirectional control dropped", "a\u202eb\u202ac\u202bd\u202ce\u202df\u2066g\u2067h\u2068i\u2069j\u200ek\u200fl\u061cm", 300, "abcdefghijklm"},
		{"a run of invalid bytes is one U+FFFD", "a\xff\xfe\xfdb\xc0c", 300, "a\uFFFDb\uFFFDc"},
		{"exactly max", strings.Repeat("x", 10), 10, strings.Repeat("x", 10)},
		{"one over: the ellipsis is within the cap", strings.Repeat("x", 11), 10, strings.Repeat("x", 9) + "…"},
		{"characters, not bytes", strings.Repeat("東", 10), 10, strings.Repeat("東", 10)},
		{"cut in characters", strings.Repeat("東", 11), 10, strings.Repeat("東", 9) + "…"},
		{"no space before the ellipsis", "abcdefgh jklm", 10, "abcdefgh…"},
		{"folding counts once", "a" + strings.Repeat(" ", 50) + "b", 3, "a b"},
		{"max 1", "ab", 1, "…"},
		{"max 0", "ab", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cleanText(tt.in, tt.max)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, utf8.RuneCountInString(got), max(tt.max, 0))
			assert.Equal(t, got, cleanText(got, tt.max), "cleaning twice changes nothing")
		})
	}
}

// TestHideSecrets: a secret is replaced wherever it is, also when cleaning
// joins its halves, and the mark can never spell it again.
func TestHideSecrets(t *testing.T) {
	t.Parallel()
	const key = "nc_live_0123456789"
	tests := []struct {
		name, in string
		secrets  []string
		max      int
		want     string
	}{
		{"replaced", "Invalid API key " + key + ".", []string{key}, 300, "Invalid API key [REDACTED]."},
		{"joined by dropping a control", "key nc_live_01234\x1b56789", []string{key}, 300, "key [REDACTED]"},
		{"every occurrence", key + key, []string{key}, 300, "[REDACTED][REDACTED]"},
		{"cut by the cap: the start of a secret is cut off too", "ab " + key, []string{key}, 10, "ab…"},
		{"cut before: the start of a secret is cut off", "Invalid key nc_live_01…", []string{key}, 300, "Invalid key…"},
		{"cut before, twice", "a nc_live_0123 nc_live_01…", []string{key, "nc_live_0123 nc_live_0123"}, 300, "a…"},
		{"a key's public prefix stays", "Invalid key nc_…", []string{key}, 300, "Invalid key nc_…"},
		{"the whole secret before the ellipsis is hidden", "k " + key + "…", []string{key}, 300, "k [REDACTED]…"},
		{"a secret inside another: the longer first", "k=abc123456789xyz", []string{"abc123456", "abc123456789xyz"}, 300, "k=[REDACTED]"},
		{"longer mark re-capped", "x " + "abc" + strings.Repeat("y", 20), []string{"abc"}, 12, "x [REDACTED…"},
		{"a secret with brackets gets another mark", "t=[k]", []string{"[k]"}, 300, "t=<REDACTED>"},
		{"the mark would spell the secret again", "D]xx", []string{"D]x"}, 300, "<REDACTED>x"},
		{"a secret inside every mark: deleted", "-EDAC-", []string{"EDAC"}, 300, "--"},
		{"no mark fits: deleted", "x[<{(y)}>]z", []string{"[<{(y)}>]"}, 300, "xz"},
		{"deleting may join another: deleted too", "aabb", []string{"ab", "[({<"}, 300, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cleanHiding(tt.in, tt.max, tt.secrets)
			assert.Equal(t, tt.want, got)
			for _, s := range tt.secrets {
				assert.NotContains(t, got, s)
			}
			assert.False(t, endsInSecretStart(got, tt.secrets), "ends with a secret's start: %q", got)
		})
	}
}

// TestCapsAreExact: Message, Reason, request IDs, an error's line and a
// logged text each stop at their cap, the ellipsis counted within it.
func TestCapsAreExact(t *testing.T) {
	t.Parallel()
	decode := func(t *testing.T, message, reason, requestID string) *APIError {
		t.Helper()
		body := `{"error":{"code":` + jsonString(reason) + `,"message":` + jsonString(message) + `}}`
		resp := &http.Response{StatusCode: 400, Header: http.Header{"X-Request-Id": {requestID}},
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: -1}
		var apiErr *APIError
		require.ErrorAs(t, FromResponse(resp), &apiErr)
		return apiErr
	}
	at := decode(t, strings.Repeat("m", maxMessage), "r"+strings.Repeat("é", maxReason-1), strings.Repeat("東", maxHeaderValue))
	assert.Equal(t, strings.Repeat("m", maxMessage), at.Message, "Message at its cap is kept whole")
	assert.Equal(t, "r"+strings.Repeat("é", maxReason-1), at.Reason, "Reason at its cap is kept whole")
	assert.Equal(t, strings.Repeat("東", maxHeaderValue), at.RequestID, "a request ID of 128 characters (384 bytes) is kept whole")

	over := decode(t, strings.Repeat("m", maxMessage+1), strings.Repeat("r", maxReason+1), strings.Repeat("東", maxHeaderValue+1))
	for _, f := range []struct {
		name, got string
		max       int
	}{{"Message", over.Message, 300}, {"Reason", over.Reason, 64}, {"RequestID", over.RequestID, 128}} {
		assert.Equal(t, f.max, utf8.RuneCountInString(f.got), "%s: %d characters", f.name, f.max)
		assert.True(t, strings.HasSuffix(f.got, "…"), f.name)
	}
	assert.Equal(t, 300, maxMessage, "docs/errors.md states 300")
	assert.Equal(t, 64, maxReason, "docs/errors.md states 64")
	assert.Equal(t, 128, maxHeaderValue, "docs/errors.md states 128")

	long := &RequestError{Method: "GET", URL: "https://h/v1/p", Err: errors.New(strings.Repeat("é", 5032))}
	assert.Equal(t, maxLogText, utf8.RuneCountInString(long.Error()), "Error() of a 5,032-character cause")
	assert.Equal(t, maxLogText, utf8.RuneCountInString(LogValue(errors.New(strings.Repeat("x", maxLogText+1))).String()))
	assert.Equal(t, strings.Repeat("x", maxLogText), LogValue(errors.New(strings.Repeat("x", maxLogText))).String())
	assert.Equal(t, 1024, maxLogText, "README.md and docs/errors.md state 1024")
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBidiControlsDroppedEverywhere: U+202E from a server reaches neither
// a field nor a line nor a log, whichever field it came in.
func TestBidiControlsDroppedEverywhere(t *testing.T) {
	t.Parallel()
	const rlo = "\u202e"
	resp := &http.Response{StatusCode: 403,
		Header: http.Header{"X-Request-Id": {"req_" + rlo + "1"}, "Content-Type": {"application/json"}},
		Body:   io.NopCloser(strings.NewReader(`{"error":{"code":"scope` + rlo + `_x","message":"exe.` + rlo + `txt"}}`))}
	var apiErr *APIError
	require.ErrorAs(t, FromResponse(resp), &apiErr)
	var runErr Run
	require.NoError(t, runErr.UnmarshalJSON([]byte(`{"id":"run_`+rlo+`1","status":"failed","error":{"code":"RUN`+rlo+`TIME","message":"m`+rlo+`","plugin_id":"p`+rlo+`","stack":["f`+rlo+`"]}}`)))
	reqErr := &RequestError{Method: "GET", URL: "https://h/v1", RequestID: "r" + rlo, Err: errors.New("cause " + rlo)}
	cd := &CooldownError{Method: "GET", URL: "https://h/v1", RequestID: "r" + rlo, Host: "h" + rlo}
	for _, err := range []error{apiErr, runErr.Error, reqErr, cd} {
		assert.NotContains(t, err.Error(), rlo, "%T.Error()", err)
		assertLogClean(t, LogValue(err), "")
	}
	assert.Equal(t, "exe.txt", apiErr.Message)
	assert.Equal(t, "scope_x", apiErr.Reason)
	assert.Equal(t, "req_1", apiErr.RequestID)
	assert.Equal(t, "RUNTIME", runErr.Error.Reason)
	assert.Equal(t, []string{"f"}, runErr.Error.Stack)
}

// assertLogClean fails if any text of v holds a control or bidirectional
// character or is longer than maxLogText characters, or holds secret
// (when not "").
func assertLogClean(t *testing.T, v slog.Value, secret string) {
	t.Helper()
	v = v.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, a := range v.Group() {
			assertLogClean(t, a.Value, secret)
		}
		return
	}
	s := v.String()
	assert.LessOrEqual(t, utf8.RuneCountInString(s), maxLogText, "logged text %q", s)
	assert.False(t, strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }),
		"logged text %q", s)
	if secret != "" {
		assert.NotContains(t, s, secret)
	}
}

// TestRequestErrorCauseIsCleaned: a *RequestError whose cause is a
// *url.Error (a Base built on an *http.Client) with a secret in its
// query and a newline in its text prints and logs the cause redacted, on
// one line, within the cap.
func TestRequestErrorCauseIsCleaned(t *testing.T) {
	t.Parallel()
	const secret = "nc_live_QUERYSECRET"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // connections are refused

	inner := &http.Client{}
	tr := &Transport{Retry: RetryPolicy{MaxAttempts: 1}, Base: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r, err := http.NewRequestWithContext(req.Context(), req.Method, req.URL.String(), nil)
		if err != nil {
			return nil, err
		}
		return inner.Do(r) // a *url.Error that prints the URL as sent
	})}
	req, err := http.NewRequest("POST", "http://"+addr+"/v1/pipelines?api_key="+secret, nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	var reqErr *RequestError
	require.ErrorAs(t, err, &reqErr)
	var urlErr *url.Error
	require.ErrorAs(t, reqErr.Err, &urlErr)
	require.Contains(t, urlErr.Error(), secret, "the cause itself prints the secret")

	// The same, with a newline and 5,000 characters in the cause's text.
	hostile := &RequestError{Method: "POST", URL: "http://h/v1/pipelines?api_key=REDACTED", Attempts: 1,
		Err: &url.Error{Op: "Post", URL: "http://h/v1/pipelines?api_key=" + secret,
			Err: errors.New("read: reset\nlevel=ERROR msg=forged " + strings.Repeat("é", 5000))}}
	for _, e := range []*RequestError{reqErr, hostile} {
		line := e.Error()
		assert.NotContains(t, line, secret)
		assert.Contains(t, line, "api_key=REDACTED")
		assert.NotContains(t, line, "\n")
		assert.LessOrEqual(t, utf8.RuneCountInString(line), maxLogText)
		assertLogClean(t, e.LogValue(), secret)
		assertLogClean(t, LogValue(e), secret)
		assertLogClean(t, LogValue(&url.Error{Op: "Post", URL: urlErr.URL, Err: e}), secret)
	}
	cause := hostile.LogValue().Group()[4]
	require.Equal(t, "error", cause.Key)
	assert.True(t, strings.HasPrefix(cause.Value.String(), `Post "http://h/v1/pipelines?api_key=REDACTED": read: reset level=ERROR msg=forged éé`),
		cause.Value.String())
}

func TestCleanHeaderValue(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("r", 1<<20)
	tests := []struct {
		name, in, want string
	}{
		{"clean", "req_01HF8ZK2QW7Y", "req_01HF8ZK2QW7Y"},
		{"empty", "", ""},
		{"spaces trimmed", "  req 1 ", "req 1"},
		{"CR LF cannot split a log line", "req_1\r\nlevel=ERROR msg=forged", "req_1 level=ERROR msg=forged"},
		{"ESC", "req_\x1b[31mred\x1b[0m", "req_[31mred[0m"},
		{"tab folded, NUL and DEL dropped", "a\tb\x00c\x7fd", "a bcd"},
		{"NEL folded, CSI dropped", "a\u0085b\u009bc", "a bc"},
		{"line and paragraph separators", "a\u2028b\u2029c", "a b c"},
		{"bidirectional controls", "req_\u202egnp.exe\u202c", "req_gnp.exe"},
		{"invalid UTF-8", "req_\xff\xfe1", "req_\uFFFD1"},
		{"valid non-ASCII kept", "req_ü_東京", "req_ü_東京"},
		{"only controls", "\r\n\x1b", ""},
		{"exactly the limit", strings.Repeat("r", maxHeaderValue), strings.Repeat("r", maxHeaderValue)},
		{"one character over", strings.Repeat("r", maxHeaderValue+1), strings.Repeat("r", maxHeaderValue-1) + "…"},
		{"1 MiB", long, long[:maxHeaderValue-1] + "…"},
		{"long after cleaning only", strings.Repeat("r\x00", maxHeaderValue), strings.Repeat("r", maxHeaderValue)},
		{"characters, not bytes", strings.Repeat("é", 128), strings.Repeat("é", 128)},
		{"cut after 127 characters", "x" + strings.Repeat("東", 200), "x" + strings.Repeat("東", 126) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := cleanHeaderValue(tt.in)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, utf8.RuneCountInString(got), maxHeaderValue)
			assert.Equal(t, got, cleanHeaderValue(got), "cleaning twice changes nothing")
		})
	}
}

func TestCleaningCleanTextDoesNotAllocate(t *testing.T) {
	msg := "Rate limit exceeded for workspace ws_42: 600 requests per minute. Grüße, 東京."
	id := "req_01HF8ZK2QW7Y"
	var sink string
	allocs := testing.AllocsPerRun(100, func() {
		sink = cleanText(msg, maxMessage)
		sink = cleanHeaderValue(id)
	})
	assert.Zero(t, allocs, "allocations to clean clean text")
	_ = sink
}

// TestCleanTextFastPath: text the fast path passes through is exactly what
// the full cleaning would give, and text it sends on is not.
func TestCleanTextFastPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		max   int
		clean bool
	}{
		{"", 10, true},
		{"one line", 10, true},
		{"exactly10!", 10, true},
		{"eleven runes", 11, false},
		{"ü東京 and more", 20, true},
		{"ü東京", 3, true},
		{"ü東京", 2, false},
		{" leading", 10, false},
		{"trailing ", 10, false},
		{"two  spaces", 20, false},
		{"tab\there", 20, false},
		{"line\nbreak", 20, false},
		{"nbsp\u00a0here", 20, false},
		{"nel\u0085here", 20, false},
		{"sep\u2028here", 20, false},
		{"esc\x1b[0m", 20, false},
		{"del\x7f", 20, false},
		{"bad \xff byte", 20, false},
		{"literal \uFFFD is valid", 30, true},
		{"x", 0, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.clean, isCleanText(tt.in, tt.max), "isCleanText(%q, %d)", tt.in, tt.max)
		assert.Equal(t, tt.clean, cleanFull(tt.in, tt.max, nil) == tt.in, "cleanFull(%q, %d) = %q", tt.in, tt.max, cleanFull(tt.in, tt.max, nil))
		assert.Equal(t, cleanFull(tt.in, tt.max, nil), cleanText(tt.in, tt.max))
	}
}

// FuzzCleanText: cleanText's fast path agrees with the full cleaning, and
// cleanHeaderValue's output is clean, bounded and stable.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", "one line", " x ", "a  b", "\xff", "ü東京", "a\u2028b", "…", strings.Repeat("é", 80)} {
		f.Add(s, uint8(10))
	}
	f.Fuzz(func(t *testing.T, s string, max uint8) {
		require.False(t, isCleanText(s, int(max)) && cleanFull(s, int(max), nil) != s, "isCleanText(%q, %d) but cleanFull = %q", s, max, cleanFull(s, int(max), nil))
		require.Equal(t, cleanFull(s, int(max), nil), cleanText(s, int(max)), "cleanText(%q, %d)", s, max)
		h := cleanHeaderValue(s)
		require.LessOrEqual(t, utf8.RuneCountInString(h), maxHeaderValue, "cleanHeaderValue(%q) = %q: too long, untrimmed or not stable", s, h)
		require.Equal(t, h, cleanHeaderValue(h), "cleanHeaderValue(%q) = %q: too long, untrimmed or not stable", s, h)
		require.Equal(t, strings.TrimSpace(h), h, "cleanHeaderValue(%q) = %q: too long, untrimmed or not stable", s, h)
		if h != "" {
			checkOneLine(t, "cleanHeaderValue", h)
		}
	})
}

// TestRedactURLSecretNames: the names a security reviewer expects are
// redacted, in any case, and a JWT is redacted whatever its name; other
// values stay readable.
func TestRedactURLSecretNames(t *testing.T) {
	t.Parallel()
	secret := []string{
		"api_key", "apikey", "X-API-Key", "token", "access_token", "refresh_token", "id_token",
		"X-Amz-Security-Token", "client_secret", "password", "passwd", "pwd", "sig", "signature",
		"X-Amz-Signature", "X-Amz-Credential", "auth", "authorization", "session", "sessionid",
		"cookie", "jwt", "code", "code_verifier", "assertion", "client_assertion", "hmac", "otp",
		"totp", "nonce", "state", "SAMLResponse", "ticket", "csrf_token", "_xsrf", "private_key", "bearer",
	}
	for _, name := range secret {
		u := &url.URL{Scheme: "https", Host: "h", Path: "/v1", RawQuery: url.Values{name: {"S3CR3T"}, "limit": {"5"}}.Encode()}
		got := redactURL(u)
		assert.NotContains(t, got, "S3CR3T", name)
		assert.Contains(t, got, "limit=5", name)
	}
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	got := redactURL(&url.URL{Scheme: "https", Host: "h", RawQuery: "q=" + jwt + "&offset=10"})
	assert.Equal(t, "https://h?offset=10&q=REDACTED", got)
}
