// This file cleans what reaches an error message or a log: URLs without
// credentials or secret query values, and server text fit for one line.

package neuracraft

import (
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The one rule for text that reaches an error or a log. Every text an
// error of this package prints (Error, and each field it is made of) and
// every text a LogValue logs goes through cleanText, whatever its source:
// server text (messages, reasons, X-Request-ID), the text of a cause, and
// the caller's own request ID.
//
//   - A run of invalid UTF-8 becomes one U+FFFD.
//   - White space (unicode.IsSpace: space, tab, CR, LF, NEL, no-break
//     space, line and paragraph separators, ...) folds: a run of it is
//     one space between words, none at either end.
//   - Control characters (unicode.IsControl: C0 such as ESC, DEL, C1) and
//     bidirectional controls (unicode.Bidi_Control: U+061C, U+200E,
//     U+200F, U+202A-U+202E, U+2066-U+2069) are dropped.
//   - Credentials the caller knows of are replaced by "[REDACTED]" (see
//     hideSecrets), after the steps above, so that dropping a character
//     cannot join the halves of one.
//   - The result has at most max characters (runes): a longer text keeps
//     its first max-1 and ends with "…", the ellipsis counted within max.
//     A text that ends with "…" (cut here, or before) never ends with the
//     start of a secret, from minCutSecret bytes of it on: that start is
//     cut off too.
//
// Caps are in characters everywhere: Message 300 (maxMessage), Reason 64
// (maxReason), request IDs 128 (maxHeaderValue), an error's line and a
// logged text 1024 (maxLogText).

// cleanText makes s fit for a one-line error message or log attribute,
// at most max characters, by the rule above. Text that is already clean is
// returned as it is, without allocating.
func cleanText(s string, max int) string { return cleanHiding(s, max, nil) }

// cleanHiding is cleanText that also replaces each of secrets in the
// cleaned text (see hideSecrets).
func cleanHiding(s string, max int, secrets []string) string {
	if isCleanText(s, max) && !containsAny(s, secrets) && !endsInSecretStart(s, secrets) {
		return s
	}
	return cleanFull(s, max, secrets)
}

// cleanFull is cleanHiding without its fast path for clean text.
func cleanFull(s string, max int, secrets []string) string {
	if max <= 0 {
		return ""
	}
	// Fold at most max characters (knowing whether more would come):
	// hiding never needs to see past them, since the start of a secret
	// that the cut leaves before the "…" is cut off too.
	t, more := foldText(s, max)
	t = hideSecrets(t, secrets)
	if !more && utf8.RuneCountInString(t) <= max {
		return trimSecretStart(t, secrets)
	}
	cut := firstRunes(t, max-1)
	if out := trimSecretStart(cut+"…", secrets); !containsAny(out, secrets) {
		return out
	}
	return cut // only a secret ending in "…" gets here: the text is cut without it
}

// minCutSecret is the fewest bytes of a secret's start that a cut text may
// not end with (see the rule above): fewer say no more than a key's
// public prefix, such as "nc_", and hiding them would cut off the last
// letters of many texts that hold no secret.
const minCutSecret = 4

// endsInSecretStart reports whether t ends with "…" after the start of
// one of secrets (minCutSecret bytes or more of it, not all of it).
func endsInSecretStart(t string, secrets []string) bool { return cutSecretStart(t, secrets) > 0 }

// cutSecretStart returns the length of the longest start of one of
// secrets that t has before its final "…" (see secretStart), or 0 when t
// does not end with "…".
func cutSecretStart(t string, secrets []string) int {
	body, cut := strings.CutSuffix(t, "…")
	if !cut {
		return 0
	}
	return secretStart(body, secrets)
}

// secretStart returns the length of the longest start of one of secrets
// (minCutSecret bytes or more of it, not all of it) that body ends with,
// or 0.
func secretStart(body string, secrets []string) int {
	longest := 0
	for _, sec := range secrets {
		for k := len(sec) - 1; k >= max(minCutSecret, longest+1); k-- {
			if strings.HasSuffix(body, sec[:k]) {
				longest = k
				break
			}
		}
	}
	return longest
}

// trimSecretStart returns t without the start of a secret that a cut
// left before its final "…" (see endsInSecretStart), as many times as
// one is left.
func trimSecretStart(t string, secrets []string) string {
	for k := cutSecretStart(t, secrets); k > 0; k = cutSecretStart(t, secrets) {
		body := strings.TrimSuffix(t, "…")
		t = strings.TrimRight(body[:len(body)-k], " ") + "…"
	}
	return t
}

// foldText applies the rule above, but for secrets and the cap, to the
// start of s: it returns the first max characters of the folded text, and
// whether the folded text goes on after them.
func foldText(s string, max int) (string, bool) {
	b := make([]byte, 0, min(len(s), 4*max))
	n, space := 0, false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			for i < len(s) { // the rest of the run of invalid bytes
				if r, size := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || size != 1 {
					break
				}
				i++
			}
		case unicode.IsSpace(r):
			space = n > 0
			continue
		case dropped(r):
			continue
		}
		w := 1
		if space {
			w = 2
		}
		if n+w > max {
			return string(b), true
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = utf8.AppendRune(b, r)
		n += w
	}
	return string(b), false
}

// dropped reports whether r is a character that the rule drops: a control
// character that is not white space, or a bidirectional control.
func dropped(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// firstRunes returns the first n characters of s, without a trailing
// space.
func firstRunes(s string, n int) string {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strings.TrimRight(s[:i], " ")
}

// isCleanText reports whether cleanText(s, max) is s, secrets aside:
// valid UTF-8 of at most max characters, without control or bidirectional
// characters, and without white space other than single spaces between
// words.
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
		if (r == utf8.RuneError && size == 1) || unicode.IsSpace(r) || dropped(r) {
			return false
		}
		space = false
		i += size
	}
	return !space || s == ""
}

// maxHeaderValue is the most characters of a request ID (a response's
// X-Request-ID, or the caller's own) that reach an error or a log.
const maxHeaderValue = 128

// cleanHeaderValue is cleanText for a request ID: at most maxHeaderValue
// characters.
func cleanHeaderValue(v string) string { return cleanText(v, maxHeaderValue) }

// redactedMarks are what hideSecrets writes in place of a secret, in order
// of preference.
var redactedMarks = []string{"[REDACTED]", "<REDACTED>", "{REDACTED}", "(REDACTED)"}

// hideSecrets returns s with every occurrence of each secret replaced by
// "[REDACTED]". The mark is chosen so that the result cannot spell a
// secret again: its first and last bytes are in no secret, and no secret
// is part of it; when every mark fails that test (a secret holding all of
// "[", "<", "{" and "(", or their closing brackets), secrets are deleted
// until none is left. Empty secrets are ignored.
func hideSecrets(s string, secrets []string) string {
	if !containsAny(s, secrets) {
		return s
	}
	mark, ok := "", false
	for _, m := range redactedMarks {
		if ok = markFits(m, secrets); ok {
			mark = m
			break
		}
	}
	// The longest first: a secret inside another must not leave the
	// other's rest in the text.
	secrets = slices.SortedStableFunc(slices.Values(secrets), func(a, b string) int { return len(b) - len(a) })
	for containsAny(s, secrets) { // once with a mark that fits; deleting shrinks s each time
		for _, sec := range secrets {
			if sec != "" {
				s = strings.ReplaceAll(s, sec, mark)
			}
		}
		if ok {
			break
		}
	}
	return s
}

// markFits reports whether mark can replace secrets without a secret
// reading across its edge or inside it.
func markFits(mark string, secrets []string) bool {
	for _, sec := range secrets {
		if sec != "" && (strings.IndexByte(sec, mark[0]) >= 0 || strings.IndexByte(sec, mark[len(mark)-1]) >= 0 ||
			strings.Contains(mark, sec)) {
			return false
		}
	}
	return true
}

// containsAny reports whether s holds one of secrets (empty ones aside).
func containsAny(s string, secrets []string) bool {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			return true
		}
	}
	return false
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
