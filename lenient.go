// This file holds the lenient JSON leaf types that both decoders (error
// bodies in decode.go, run documents in rundecode.go) read documents into
// in one json.Unmarshal: a field of the wrong type spoils only itself.

package neuracraft

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// jsonText is a JSON string; any other JSON value leaves it empty.
type jsonText string

func (t *jsonText) UnmarshalJSON(raw []byte) error {
	if len(raw) < 2 || raw[0] != '"' {
		return nil
	}
	// The decoder has checked the syntax; without escapes or invalid
	// UTF-8 (which the decoder replaces byte by byte) the text is the
	// bytes between the quotes.
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		*t = jsonText(inner)
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		*t = jsonText(s)
	}
	return nil
}

// jsonCode is the error's "code": a number, or a string that is either
// numeric ("8102") or a reason ("not_found"). Other JSON values are
// ignored; the raw body keeps them.
type jsonCode struct {
	number   int
	isNumber bool
	reason   string
	other    string // a JSON number that is not a whole number, as sent
}

func (c *jsonCode) UnmarshalJSON(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '"' {
		var text jsonText
		_ = text.UnmarshalJSON(raw)
		s := strings.TrimSpace(string(text))
		c.number, c.isNumber = parseInt(s)
		if !c.isNumber {
			c.reason = s
		}
		return nil
	}
	if raw[0] == '-' || ('0' <= raw[0] && raw[0] <= '9') {
		c.number, c.isNumber = parseInt(string(raw)) // a fraction or exponent is not a code
		if !c.isNumber {
			c.other = string(raw)
		}
	}
	return nil
}

// parseInt is strconv.Atoi for a 64-bit int without the error value (which
// allocates): an optional sign and decimal digits, within range.
func parseInt(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	if s == "" {
		return 0, false
	}
	const limit = uint64(1) << 63 // -limit is the least int64
	var n uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if d > 9 || n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if !neg {
		if n == limit {
			return 0, false
		}
		return int(n), true
	}
	return int(-int64(n)), true // -int64(limit) wraps to itself, the least int64
}

// jsonBool is a JSON true or false; any other value leaves it unset.
type jsonBool struct{ value, set bool }

func (b *jsonBool) UnmarshalJSON(raw []byte) error {
	switch string(raw) {
	case "true":
		*b = jsonBool{value: true, set: true}
	case "false":
		*b = jsonBool{set: true}
	}
	return nil
}

// eachElement calls f with each element of raw, a JSON array, as the
// bytes it spans (never empty), in order, without decoding or copying
// them. raw comes from the decoder, which has checked its syntax; on
// anything else it stops at what it cannot read, and never reads past
// raw's end.
func eachElement(raw []byte, f func(item []byte)) {
	i := skipSpace(raw, 1) // past '['
	for i < len(raw) && raw[i] != ']' {
		start, depth := i, 0
	item:
		for ; i < len(raw); i++ {
			switch raw[i] {
			case '"':
				i = closingQuote(raw, i)
			case '[', '{':
				depth++
			case ']', '}':
				if depth == 0 {
					break item
				}
				depth--
			case ',':
				if depth == 0 {
					break item
				}
			}
		}
		if item := bytes.TrimRight(raw[start:min(i, len(raw))], " \t\r\n"); len(item) > 0 {
			f(item)
		}
		if i >= len(raw) || raw[i] != ',' {
			return
		}
		i = skipSpace(raw, i+1)
	}
}

// closingQuote returns the index of the quote that closes the JSON string
// opening at raw[open], or len(raw)-1 when none does.
func closingQuote(raw []byte, open int) int {
	for i := open + 1; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(raw) - 1
}

// skipSpace returns the index of the first byte of raw at or after i that
// is not JSON white space.
func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\r' || raw[i] == '\n') {
		i++
	}
	return i
}

// jsonValue is any JSON value but null, copied as it came.
type jsonValue []byte

func (v *jsonValue) UnmarshalJSON(raw []byte) error {
	if string(raw) != "null" {
		*v = append((*v)[:0], raw...)
	}
	return nil
}
