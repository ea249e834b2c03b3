// Tests of the lenient JSON leaf types (lenient.go): parseInt, and jsonText's
// fast path for strings without escapes against encoding/json.

package neuracraft

import (
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// TestEachElement: eachElement yields the elements of a JSON array as
// encoding/json reads them, nested values and strings with brackets,
// commas and escaped quotes included.
func TestEachElement(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`[]`, `[ ]`, `[1]`, ` [1,2 , 3 ] `[1:], `["a","b"]`, `["a,b","c]d","e\"]"]`,
		`[[1,[2]],{"a":[3,"]"]},null,true,-1.5e3]`, "[\n\t\"x\" ,\r\n {} ]", `["\\",1]`, `[""," ",[]]`} {
		var want []json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(raw), &want), raw)
		assert.Equal(t, rawElements(want), elementsOf([]byte(raw)), raw)
	}
}

// FuzzEachElement: on a valid JSON array, eachElement yields what
// encoding/json reads; on any other bytes, it stays within them and
// yields only non-empty parts of them.
func FuzzEachElement(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b,c"]`, `[[1,[2]],{"a":"]"}]`, `["\"",1]`, `[`, `["`, `[1,`, `["\`, `[}]`, `[1]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 || raw[0] != '[' {
			return // decodeStack calls it on arrays only
		}
		got := elementsOf(raw)
		for _, item := range got {
			require.NotEmpty(t, item)
		}
		var want []json.RawMessage
		if json.Unmarshal(raw, &want) == nil {
			require.Equal(t, rawElements(want), got, "%q", raw)
		}
	})
}

// elementsOf returns what eachElement yields for raw.
func elementsOf(raw []byte) []string {
	var out []string
	eachElement(raw, func(item []byte) { out = append(out, string(item)) })
	return out
}

// rawElements returns the elements encoding/json read, as eachElement
// yields them (the bytes each spans).
func rawElements(items []json.RawMessage) []string {
	var out []string
	for _, item := range items {
		out = append(out, string(item))
	}
	return out
}
