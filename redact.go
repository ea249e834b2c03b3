// This file cleans what reaches an error message or a log: URLs without
// credentials or secret query values, and server text fit for one line.

package neuracraft

import (
	"net/url"
	"strings"
	"unicode"
)

// cleanText makes s fit for a one-line error message: valid UTF-8, no
// control characters, runs of white space folded, at most max runes (an
// ellipsis marks a cut).
func cleanText(s string, max int) string {
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

// maxIDLen is the longest request ID, in runes, that an error or a log
// line quotes; a longer one is cut and ends in an ellipsis.
const maxIDLen = 128

// cleanID makes a request ID (from the caller's request header, or from a
// response) fit for an error message or a log line: no control characters
// (CR, LF, ESC, C1), valid UTF-8, at most maxIDLen runes. A clean ID, the
// usual case, is returned as is without allocating.
func cleanID(id string) string {
	if len(id) <= maxIDLen {
		clean := true
		for i := 0; i < len(id); i++ {
			if c := id[i]; c <= ' ' || c >= 0x7f {
				clean = false
				break
			}
		}
		if clean {
			return id
		}
	}
	return cleanText(id, maxIDLen)
}
