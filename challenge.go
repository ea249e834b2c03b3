// This file reads the WWW-Authenticate challenges of a response (RFC 9110
// section 11.6.1) for the error a Bearer challenge names (RFC 6750
// section 3).

package neuracraft

import "strings"

// The parser looks at no more than this much of a WWW-Authenticate header:
// maxChallengeFields field lines, each cut after maxChallengeBytes.
const (
	maxChallengeFields = 8
	maxChallengeBytes  = 4 << 10
)

// bearerError returns the "error" and "error_description" parameters of
// the first Bearer challenge with an "error" in the WWW-Authenticate field
// lines values, as in
//
//	WWW-Authenticate: Bearer realm="api", error="invalid_token", error_description="The token expired"
//
// It reads the challenge syntax of RFC 9110: several challenges per line
// and over several lines, auth-params whose values are tokens or quoted
// strings with backslash escapes, and token68 credentials. It returns
// empty strings when there is no such challenge, and stops at the first
// malformed part. The results are raw server text, to be cleaned.
func bearerError(values []string) (code, description string) {
	for _, v := range values[:min(len(values), maxChallengeFields)] {
		p := challengeParser{s: v[:min(len(v), maxChallengeBytes)]}
		if code, description = p.bearerError(); code != "" {
			return code, description
		}
	}
	return "", ""
}

// challengeParser reads one WWW-Authenticate field line.
type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) bearerError() (code, description string) {
	bearer := false   // inside a Bearer challenge
	atScheme := false // just after an auth-scheme: a token68 may follow
	for {
		p.skip(" \t")
		if p.i >= len(p.s) {
			break
		}
		if p.s[p.i] == ',' {
			p.i++
			atScheme = false
			continue
		}
		word := p.run(isToken68Char)
		if word == "" {
			return "", "" // malformed: give up on the line
		}
		p.skip(" \t")
		if p.next('=') {
			atScheme = false
			p.skip(" \t")
			if p.i >= len(p.s) || p.s[p.i] == ',' || p.s[p.i] == '=' {
				p.skip("=") // a token68 with its padding, not a name=value
				continue
			}
			value, ok := p.value()
			if !ok {
				return "", ""
			}
			if !bearer {
				continue
			}
			switch {
			case strings.EqualFold(word, "error") && code == "":
				code = value
			case strings.EqualFold(word, "error_description") && description == "":
				description = value
			}
			continue
		}
		if atScheme { // the token68 of the scheme before
			atScheme = false
			continue
		}
		// A new challenge starts: the one before is complete.
		if code != "" {
			return code, description
		}
		description = ""
		bearer, atScheme = strings.EqualFold(word, "Bearer"), true
	}
	if code == "" {
		description = ""
	}
	return code, description
}

// value reads an auth-param's value: a quoted string or a token.
func (p *challengeParser) value() (string, bool) {
	if !p.next('"') {
		v := p.run(isTokenChar)
		return v, v != ""
	}
	start, escaped := p.i, false
	for ; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case '\\':
			escaped = true
			p.i++ // the quoted character, whatever it is
		case '"':
			v := p.s[start:p.i]
			p.i++
			if escaped {
				v = unquotePairs(v)
			}
			return v, true
		}
	}
	return "", false // unterminated
}

// unquotePairs replaces each quoted-pair (a backslash and a character) in
// s with the character.
func unquotePairs(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// next consumes c if it comes next.
func (p *challengeParser) next(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// skip consumes any of the bytes in set.
func (p *challengeParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// run consumes and returns the longest run of bytes for which ok holds.
func (p *challengeParser) run(ok func(byte) bool) string {
	start := p.i
	for p.i < len(p.s) && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// isTokenChar reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isToken68Char reports whether c is a tchar or a character of a token68
// (RFC 9110 section 11.2), which adds '/'.
func isToken68Char(c byte) bool { return c == '/' || isTokenChar(c) }
