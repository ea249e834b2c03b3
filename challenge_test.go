// Tests of the WWW-Authenticate parser (challenge.go): the error a Bearer
// challenge names (RFC 6750 section 3), on hand-written headers and fuzzed.
// decode_oauth_test.go has the challenge read through FromResponse.

package neuracraft

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBearerError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		values    []string
		code, des string
	}{
		{"RFC 6750 example", []string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`},
			"invalid_token", "The access token expired"},
		{"token values", []string{`Bearer error=invalid_request, error_description=missing`}, "invalid_request", "missing"},
		{"case-insensitive scheme and names", []string{`bEaReR ERROR="invalid_token", Error_Description="x"`}, "invalid_token", "x"},
		{"white space around =", []string{"Bearer error \t= \"invalid_token\" ,  error_description =\"d\""}, "invalid_token", "d"},
		{"escapes in a quoted string", []string{`Bearer error="invalid_token", error_description="say \"hi\", a \\ and \x"`},
			"invalid_token", `say "hi", a \ and x`},
		{"comma and = inside quotes", []string{`Bearer error_description="a, b=c, Basic d", error="invalid_token"`}, "invalid_token", "a, b=c, Basic d"},
		{"empty list elements", []string{`, Bearer ,, error="invalid_token",`}, "invalid_token", ""},
		{"after a token68 challenge", []string{`Basic dXNlcjpwYXNz/x+y==, Bearer error="invalid_token"`}, "invalid_token", ""},
		{"after a token68 with one =", []string{`Custom abc=, Bearer error="e1"`}, "e1", ""},
		{"after another scheme's error", []string{`Basic error="not_this", Bearer error="this", error_description="d"`}, "this", "d"},
		{"first Bearer with an error", []string{`Bearer realm="a", error_description="not this", Bearer error="e2", error_description="this"`}, "e2", "this"},
		{"challenge after the Bearer one", []string{`Bearer error="e3", Basic realm="x", error_description="not this"`}, "e3", ""},
		{"first of a repeated param", []string{`Bearer error="e4", error="e5"`}, "e4", ""},
		{"second field line", []string{`Basic realm="x"`, `Bearer error="e6"`}, "e6", ""},
		{"no Bearer", []string{`Basic realm="x", error="e"`}, "", ""},
		{"no error", []string{`Bearer realm="x", error_description="d"`}, "", ""},
		{"empty", []string{""}, "", ""},
		{"none", nil, "", ""},
		{"unterminated quote", []string{`Bearer error="invalid_token`}, "", ""},
		{"unterminated after the error", []string{`Bearer error="e7", error_description="d`}, "", ""},
		{"junk", []string{`"Bearer" error=x`}, "", ""},
		{"missing value", []string{`Bearer error=, error_description="d"`}, "", ""},
		{"beyond the bound", []string{`Bearer realm="` + strings.Repeat("r", maxChallengeBytes) + `", error="e"`}, "", ""},
		{"beyond the lines bound", append(make([]string, maxChallengeFields), `Bearer error="e"`), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, des := bearerError(tt.values)
			assert.Empty(t, cmp.Diff([2]string{tt.code, tt.des}, [2]string{code, des}), "bearerError(%q) (-want +got)", tt.values)
		})
	}
}

// FuzzBearerError: any WWW-Authenticate lines are read without panic and
// within the bounds, and a Bearer challenge written with any error and
// description (quoted with escapes) reads back as written.
func FuzzBearerError(f *testing.F) {
	f.Add(`Basic realm="x"`, "invalid_token", "The access token expired")
	f.Add(`Bearer realm="a\"b", error=x`, `say "hi"`, `a\b`)
	f.Add(`Basic dXNlcjpwYXNz==`, "", "")
	f.Add(`Bearer error="`, "e", "d,d=\"d\"")
	f.Add("\x00\xff,,= =\"", "\t", "\r\n")
	f.Fuzz(func(t *testing.T, before, code, description string) {
		lines := []string{before}
		c, d := bearerError(lines)
		require.LessOrEqual(t, len(c), maxChallengeBytes, "bearerError(%q) = %q, %q", before, c, d)
		require.LessOrEqual(t, len(d), maxChallengeBytes, "bearerError(%q) = %q, %q", before, c, d)
		if c == "" {
			require.Empty(t, d, "bearerError(%q): a description without a code", before)
		}
		if code == "" || strings.ContainsAny(code+description, "\x00\r\n") || len(code)+len(description) > 1000 {
			return
		}
		quote := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace
		lines = append(lines, `Bearer error="`+quote(code)+`", error_description="`+quote(description)+`"`)
		if c != "" {
			return // the first line had its own
		}
		c, d = bearerError(lines)
		require.Equal(t, code, c, "bearerError(%q) = %q, %q; want %q, %q", lines, c, d, code, description)
		require.Equal(t, description, d, "bearerError(%q) = %q, %q; want %q, %q", lines, c, d, code, description)
	})
}
