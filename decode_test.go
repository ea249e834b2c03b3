// Tests for the one-pass decoder's parts and for server header values on
// their way to Error() and slog: cleanHeaderValue, cleanText's fast path,
// parseInt, the bounded reader, and the request ID through FromResponse,
// a Transport and a Client.

package neuracraft

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestParseInt(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "0", "8102", "+8102", "-8102", "08102", "00", "+", "-", "--1", "+-1", "1_000", " 1", "1 ",
		"8102.5", "1e3", "0x10", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "99999999999999999999", "184467440737095516161844674407370955161", "١٢٣"} {
		want, err := strconv.ParseInt(s, 10, 64)
		got, ok := parseInt(s)
		require.Equal(t, err == nil, ok, "parseInt(%q) = %d, %v; strconv.ParseInt = %d, %v", s, got, ok, want, err)
		if ok {
			assert.Equal(t, want, int64(got), "parseInt(%q)", s)
		}
	}
}

// FuzzParseInt: parseInt is strconv.ParseInt(s, 10, 64) without the error.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"8102", "-1", "+0", "9223372036854775808", "-9223372036854775808", "1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := strconv.ParseInt(s, 10, 64)
		got, ok := parseInt(s)
		require.Equal(t, err == nil, ok, "parseInt(%q) = %d, %v; strconv.ParseInt = %d, %v", s, got, ok, want, err)
		if ok {
			require.Equal(t, want, int64(got), "parseInt(%q)", s)
		}
	})
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

// TestHostileRequestIDThroughTransport: the same through a Transport over
// a custom Base, which returns responses with and without their request.
func TestHostileRequestIDThroughTransport(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileIDs {
		for _, where := range []string{"response", "request without resp.Request"} {
			t.Run(tt.name+"/"+where, func(t *testing.T) {
				t.Parallel()
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					resp := newErrorResponse(http.StatusNotFound, `{"error":{"code":"not_found","message":"gone"}}`)
					if where == "response" {
						resp.Header["X-Request-Id"] = []string{tt.id}
						resp.Request = req
					}
					return resp, nil
				})
				req, err := http.NewRequest(http.MethodGet, "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
				require.NoError(t, err)
				if where != "response" {
					req.Header["X-Request-Id"] = []string{tt.id}
				}
				resp, err := (&Transport{Base: base}).RoundTrip(req)
				require.Nil(t, resp)
				var apiErr *APIError
				require.ErrorAs(t, err, &apiErr)
				checkCleanError(t, apiErr, tt.want)
			})
		}
	}
}

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

// TestJSONTextEscapes: the decoder's fast path for strings without escapes
// agrees with encoding/json on every other string, invalid UTF-8 included.
func TestJSONTextEscapes(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`"plain"`, `""`, `"a\"b"`, `"\u00fc\ud83d\ude00"`, `"\ud800"`, "\"\xff\xfe\"", "\"ü\"", `"\/\b\f\n\r\t"`, `5`, `null`, `{"a":1}`, `[]`, `true`} {
		var want string
		_ = json.Unmarshal([]byte(raw), &want)
		var got jsonText
		require.NoError(t, got.UnmarshalJSON([]byte(raw)))
		assert.Equal(t, want, string(got), raw)
		assert.True(t, utf8.ValidString(string(got)), raw)
	}
}
