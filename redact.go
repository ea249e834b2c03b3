// This file cleans what reaches an error message or a log: URLs without
// credentials or secret query values, and server text fit for one line.

package neuracraft

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// cleanText makes s fit for a one-line error message: valid UTF-8, no
// control characters, runs of white space folded, at most max runes (an
// ellipsis marks a cut). Text that is already clean is returned as it is,
// without allocating.
func cleanText(s string, max int) string {
	if isCleanText(s, max) {
		return s
	}
	return foldText(s, max)
}

// foldText is cleanText's work on text that is not clean yet.
func foldText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			n++ // the space written before r
		}
		if n >= max {
			b.WriteString("…")
			return b.String()
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// isCleanText reports whether cleanText(s, max) is s: valid UTF-8 of at
// most max runes, without control characters, and without white space
// other than single spaces between words.
func isCleanText(s string, max int) bool {
	n, space := 0, true // true: a leading space is not clean
	for i := 0; i < len(s); n++ {
		if n >= max {
			return false
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f || (c == ' ' && space) {
				return false
			}
			space = c == ' '
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
		space = false
		i += size
	}
	return !space || s == ""
}

// maxHeaderValue is the most bytes of a response header's value that
// reach an error or a log, after cleanHeaderValue.
const maxHeaderValue = 128

// cleanHeaderValue makes a server's header value fit for one line of an
// error or a log: without control characters (C0 such as CR, LF and ESC,
// DEL, C1), line and paragraph separators, bidirectional controls or
// invalid UTF-8, trimmed of white space, and at most maxHeaderValue bytes:
// a longer value keeps its beginning, cut at a character boundary and
// marked with "…". A value that is already clean is returned as it is,
// without allocating.
func cleanHeaderValue(v string) string {
	clean := len(v) <= maxHeaderValue
	for i := 0; clean && i < len(v); i++ {
		clean = v[i] >= ' ' && v[i] < 0x7f
	}
	if clean {
		return strings.TrimSpace(v)
	}
	const cut = maxHeaderValue - len("…")
	b := make([]byte, 0, maxHeaderValue)
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		i += size
		if (r == utf8.RuneError && size == 1) || unicode.IsControl(r) ||
			unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
			continue
		}
		if len(b)+size > maxHeaderValue {
			// Too long: keep what fits before the ellipsis.
			for len(b) > cut { // b holds whole runes
				_, size := utf8.DecodeLastRune(b)
				b = b[:len(b)-size]
			}
			b = append(b, "…"...)
			break
		}
		b = utf8.AppendRune(b, r)
	}
	return strings.TrimSpace(string(b))
}

// urlPath returns the path of a URL string, or "" when it has none.
func urlPath(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

// secretWords mark query parameters whose values are redacted from URLs:
// a name that contains one of them, in any case, is secret. The list is a
// deny-list matched on substrings, so it errs on the side of redacting
// ("postcode" is redacted for "code"): API keys and tokens of every kind
// (access_token, refresh_token, id_token, X-Amz-Security-Token), client
// secrets and passwords, signatures and MACs (X-Amz-Signature, sig, hmac),
// OAuth codes, assertions, PKCE verifiers, state and nonces, JWTs, one-time
// passwords, SAML messages, tickets, sessions, cookies and CSRF tokens.
var secretWords = []string{
	"key", "token", "secret", "pass", "pwd", "sig", "auth", "credential", "session", "cookie",
	"jwt", "code", "assertion", "hmac", "otp", "nonce", "state", "verifier", "bearer",
	"private", "saml", "ticket", "csrf", "xsrf",
}

// secretName reports whether a query parameter's name looks secret.
func secretName(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// looksLikeJWT reports whether a value is a JSON Web Token (three
// base64url parts, the first an encoded JSON object), which is a bearer
// credential whatever the parameter is called.
func looksLikeJWT(v string) bool {
	return strings.HasPrefix(v, "eyJ") && strings.Count(v, ".") == 2
}

// redactURL renders u without user information or fragment, with the value
// of every query parameter whose name looks secret (see secretWords), and
// of every value that is a JWT, replaced by "REDACTED".
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "REDACTED"
		} else {
			for name, vals := range q {
				secret := secretName(name)
				for i, v := range vals {
					if secret || looksLikeJWT(v) {
						vals[i] = "REDACTED"
					}
				}
			}
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}
