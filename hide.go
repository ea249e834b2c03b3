// This file hides the credentials a request carried from the errors and
// logs about it: the rule, and its application to each error type and to
// the raw parts of an APIError (Header, Body, Details).

package neuracraft

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The credentials a request carries never appear in an error of this
// package, wherever a server echoes them. The rule, applied by the
// Transport to every *APIError and *RequestError it creates for a request
// (the errors that carry a server's or a network's text), with the
// credentials of the request and of the requests of its redirect chain
// (and of an answer's resp.Request, which a RoundTripper below the
// Transport, such as an OAuth 2.0 one, may have given a token), and by a
// Client to every error it returns, with its own APIKey and Token:
//
//   - Text fields (Message, Reason, RequestID, RunError's texts and
//     Stack, Method, URL, Host) have each credential replaced by
//     "[REDACTED]" (hideSecrets), after cleaning, within their caps.
//   - APIError.Details, JSON, is decoded and encoded again with the
//     credential replaced in every string, key and number, when it holds
//     one (also spelled with JSON escapes).
//   - APIError.Header is a copy of the response's header with the
//     credential replaced in names and values, when it holds one.
//   - APIError.Body, the raw bytes, has each occurrence replaced; a body
//     that also spells the credential with JSON escapes ("\u006ec_...")
//     is dropped (Body is nil) rather than kept half-hidden.
//   - The cause of an error whose text holds a credential is wrapped by
//     an error with the hidden text that unwraps to it, so errors.Is and
//     errors.As still see the cause.
//
// A credential is the whole value of an X-API-Key header, or the
// credentials of an Authorization header (what follows its scheme, such
// as "Bearer"), trimmed of white space; or, in the request's URL, the
// password of its user information and the value of a query parameter
// that URLs are shown without (see redactURL), as they read and as the
// URL spells them, when it has at least minURLSecret characters: a
// shorter value (state=1, code=ab) is no credential worth hiding and
// replacing it everywhere would garble the text. A text cut at its cap
// never ends with the start of a credential (see cleanText's rule).

// credentialsIn returns the credentials that h carries, by the rule
// above.
func credentialsIn(h http.Header) []string {
	var out []string
	for k, vs := range h {
		switch {
		case strings.EqualFold(k, "X-Api-Key"):
			for _, v := range vs {
				out = appendSecret(out, v)
			}
		case strings.EqualFold(k, "Authorization"):
			for _, v := range vs {
				if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
					v = cred // the credentials after the scheme
				}
				out = appendSecret(out, v)
			}
		}
	}
	return out
}

func appendSecret(secrets []string, s string) []string {
	if s = strings.TrimSpace(s); s != "" && !slices.Contains(secrets, s) {
		secrets = append(secrets, s)
	}
	return secrets
}

// minURLSecret is the fewest characters a secret of a URL (see the rule
// above) has to have to be hidden from errors.
const minURLSecret = 8

// credentialsInURL returns the credentials that u carries, by the rule
// above: the password of its user information and the values of its
// query that redactURL redacts, when at least minURLSecret long; each as
// it reads and, when escaping changes it, as the URL spells it too
// ("nc%2Blive..."), since a server that echoes the request line sends it
// back so.
func credentialsInURL(u *url.URL) []string {
	if u == nil {
		return nil
	}
	var out []string
	if pw, ok := u.User.Password(); ok && len(strings.TrimSpace(pw)) >= minURLSecret {
		out = appendSecret(out, pw)
		_, raw, _ := strings.Cut(u.User.String(), ":")
		out = appendSecret(out, raw)
	}
	if u.RawQuery == "" {
		return out
	}
	for pair := range strings.SplitSeq(u.RawQuery, "&") {
		rawName, raw, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			name = rawName
		}
		v, err := url.QueryUnescape(raw)
		if err != nil {
			v = raw // not escaped as a query is: sent, and echoed, as it is
		}
		if (secretName(name) || looksLikeJWT(v)) && len(strings.TrimSpace(v)) >= minURLSecret {
			out = appendSecret(appendSecret(out, v), raw)
		}
	}
	return out
}

// credentialsOf returns the credentials of req and of the requests before
// it in its redirect chain: those of their headers and of their URLs.
func credentialsOf(req *http.Request) []string {
	var out []string
	for i := 0; req != nil && i < maxRedirectChain; i++ {
		for _, s := range credentialsIn(req.Header) {
			out = appendSecret(out, s)
		}
		for _, s := range credentialsInURL(req.URL) {
			out = appendSecret(out, s)
		}
		if req.Response == nil {
			break
		}
		req = req.Response.Request
	}
	return out
}

// credentials returns the Client's own credentials: its Token and API key.
func (c *Client) credentials() []string {
	return appendSecret(appendSecret(nil, c.Token), c.apiKey())
}

// hide hides the Client's own credentials from *err, the error
// a method of the Client is about to return.
func (c *Client) hide(err *error) {
	if *err != nil {
		*err = hideCredentials(*err, c.credentials())
	}
}

// hideCredentials returns err without secrets, by the rule above: the
// package's own error types have their fields hidden in place (err is
// returned), any other error whose text holds a secret is wrapped.
func hideCredentials(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	switch e := err.(type) {
	case *APIError:
		e.hide(secrets)
		return e
	case *RequestError:
		e.Method, e.URL = hideSecrets(e.Method, secrets), hideSecrets(e.URL, secrets)
		e.RequestID = cleanHiding(e.RequestID, maxHeaderValue, secrets)
		e.Err = hideCredentials(e.Err, secrets)
		return e
	case *CooldownError:
		e.Method, e.URL, e.Host = hideSecrets(e.Method, secrets), hideSecrets(e.URL, secrets), hideSecrets(e.Host, secrets)
		e.RequestID = cleanHiding(e.RequestID, maxHeaderValue, secrets)
		return e
	case *RunError:
		e.hide(secrets)
		return e
	}
	if text := urlsRedacted(err); containsAny(text, secrets) {
		return &textError{text: cleanHiding(text, maxLogText, secrets), err: err}
	}
	return err
}

// textError is an error with a text of its own (one line, without a
// secret) that stands for err: it unwraps to err.
type textError struct {
	text string
	err  error
}

func (e *textError) Error() string { return e.text }
func (e *textError) Unwrap() error { return e.err }

// hide hides secrets in every field of e that can hold server text.
func (e *APIError) hide(secrets []string) {
	e.Message = cleanHiding(e.Message, maxMessage, secrets)
	e.Reason = cleanHiding(e.Reason, maxReason, secrets)
	e.RequestID = cleanHiding(e.RequestID, maxHeaderValue, secrets)
	e.Method, e.URL = hideSecrets(e.Method, secrets), hideSecrets(e.URL, secrets)
	e.Details = hideJSON(e.Details, secrets)
	e.Header = hideHeader(e.Header, secrets)
	if body := hideBody(e.Body, secrets); !bytes.Equal(body, e.Body) || (body == nil) != (e.Body == nil) {
		if e.head != nil && e.raw == nil {
			e.raw = e.Body // the answer returned as a response keeps it as sent
		}
		e.Body = body
	}
	e.Err = hideCredentials(e.Err, secrets)
}

// hide hides secrets in every text field of e.
func (e *RunError) hide(secrets []string) {
	e.RunID = cleanHiding(e.RunID, maxRunID, secrets)
	e.Reason = cleanHiding(e.Reason, maxRunReason, secrets)
	e.Message = cleanHiding(e.Message, maxMessage, secrets)
	e.PluginID = cleanHiding(e.PluginID, maxRunID, secrets)
	e.RequestID = cleanHiding(e.RequestID, maxHeaderValue, secrets)
	for i, l := range e.Stack {
		e.Stack[i] = cleanHiding(l, maxMessage, secrets)
	}
}

// hideHeader returns h, or a copy of it with secrets hidden in names and
// values when it holds one.
func hideHeader(h http.Header, secrets []string) http.Header {
	dirty := false
	for k, vs := range h {
		dirty = dirty || containsAny(k, secrets) || slices.ContainsFunc(vs, func(v string) bool { return containsAny(v, secrets) })
	}
	if !dirty {
		return h
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		k = hideSecrets(k, secrets)
		for _, v := range vs {
			out[k] = append(out[k], hideSecrets(v, secrets))
		}
	}
	return out
}

// hideBody returns body with each secret replaced, or nil when the body
// also spells one with JSON escapes.
func hideBody(body []byte, secrets []string) []byte {
	if containsAnyBytes(body, secrets) {
		body = []byte(hideSecrets(string(body), secrets))
	}
	if bytes.IndexByte(body, '\\') >= 0 && containsAny(jsonUnescape(body), secrets) {
		return nil
	}
	return body
}

// hideJSON returns raw, a JSON value, or when a string, key or number of
// it holds a secret, the value encoded again with the secrets hidden.
func hideJSON(raw json.RawMessage, secrets []string) json.RawMessage {
	if len(raw) == 0 || (!containsAnyBytes(raw, secrets) && bytes.IndexByte(raw, '\\') < 0) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return json.RawMessage(hideSecrets(string(raw), secrets))
	}
	v, changed := hideValue(v, secrets)
	if !changed {
		return raw
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return json.RawMessage(`"[REDACTED]"`)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// containsAnyBytes is containsAny for bytes.
func containsAnyBytes(b []byte, secrets []string) bool {
	for _, sec := range secrets {
		if sec != "" && bytes.Contains(b, []byte(sec)) {
			return true
		}
	}
	return false
}

// hideValue hides secrets in a decoded JSON value, and reports whether it
// changed anything.
func hideValue(v any, secrets []string) (any, bool) {
	switch x := v.(type) {
	case string:
		h := hideSecrets(x, secrets)
		return h, h != x
	case json.Number:
		if containsAny(string(x), secrets) {
			return hideSecrets(string(x), secrets), true
		}
	case []any:
		changed := false
		for i, e := range x {
			var c bool
			x[i], c = hideValue(e, secrets)
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		changed := false
		out := make(map[string]any, len(x))
		for k, e := range x {
			h, c := hideValue(e, secrets)
			hk := hideSecrets(k, secrets)
			out[hk] = h
			changed = changed || c || hk != k
		}
		return out, changed
	}
	return v, false
}

// jsonUnescape returns b with JSON's string escapes (\", \\, \/, \b, \f,
// \n, \r, \t, \uXXXX with surrogate pairs) replaced by what they spell,
// wherever they are; anything else is kept as it is. It is for finding a
// secret spelled with escapes, not for decoding.
func jsonUnescape(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out.WriteByte(b[i])
			continue
		}
		if c := b[i+1]; c != 'u' {
			if j := strings.IndexByte(`"\/bfnrt`, c); j >= 0 {
				out.WriteByte("\"\\/\b\f\n\r\t"[j])
				i++
			} else {
				out.WriteByte(b[i])
			}
			continue
		}
		r, n := hex4(b[i+2:])
		if n == 0 {
			out.WriteByte(b[i])
			continue
		}
		i += 1 + n
		if utf16.IsSurrogate(r) && i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
			if r2, n2 := hex4(b[i+3:]); n2 > 0 {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 2 + n2
				}
			}
		}
		out.WriteRune(r)
	}
	return out.String()
}

// hex4 reads the 4 hex digits of a \u escape at the start of b: the rune
// and 4, or 0, 0.
func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return 0, 0
	}
	return rune(v), 4
}
