// This file decides what a Client sends where: the request it builds, the
// URL a path resolves to, where credentials may go (HTTPS, under BaseURL,
// not across redirects to another origin), and how a Client prints itself
// without them.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// String describes the Client without its credentials: which kind it
// has, and BaseURL without user information or secret query values.
func (c *Client) String() string {
	cred := "none"
	switch {
	case c.Token != "":
		cred = "bearer token"
	case c.apiKey() != "":
		cred = "API key"
	}
	return fmt.Sprintf("neuracraft.Client{BaseURL: %q, credentials: %s}", redactRaw(c.baseURL()), cred)
}

// GoString is String, so that %#v does not print credentials either.
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb (%q quotes it), so that no verb,
// %d and %x included, prints the Client's fields.
func (c *Client) Format(f fmt.State, verb rune) { formatText(f, verb, c.String()) }

func (c *Client) baseURL() string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	if v := os.Getenv(EnvBaseURL); v != "" {
		return v
	}
	return DefaultBaseURL
}

func (c *Client) apiKey() string {
	if c.APIKey != "" {
		return c.APIKey
	}
	return os.Getenv(EnvAPIKey)
}

// keepCredentialsHome wraps a redirect policy (nil means net/http's
// default of at most 10 redirects) so that a redirect whose target is not
// home drops the credentials, X-API-Key and Authorization, before the
// policy runs. home reports whether a target is home for a call whose
// first request went to orig; nil means the same origin (scheme, host and
// port) as orig. net/http itself strips Authorization on a redirect to
// another host, but not X-API-Key. WrapClient and Client both use it.
func keepCredentialsHome(next func(*http.Request, []*http.Request) error, home func(orig, target *url.URL) bool) func(*http.Request, []*http.Request) error {
	if home == nil {
		home = sameOrigin
	}
	return func(req *http.Request, via []*http.Request) error {
		if !home(via[0].URL, req.URL) {
			for _, h := range credentialHeaders {
				req.Header.Del(h)
			}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// keepCredentialsAtOrigin is the Transport's redirect rule: a request
// that http.Client makes to follow a redirect (req.Response is the
// redirect's answer) to an origin (scheme, host, port) other than the
// first request of its chain is sent without X-API-Key and Authorization.
// It returns req, or a shallow copy of it without those headers (req
// itself is never modified). When the chain cannot be followed back to
// its first request (a Response without its Request), the origin is
// unknown and the credentials are dropped too.
func keepCredentialsAtOrigin(req *http.Request) *http.Request {
	if req.Response == nil || !hasCredentials(req.Header) {
		return req
	}
	first := req
	for i := 0; first != nil && first.Response != nil; i++ {
		if first = first.Response.Request; i == maxRedirectChain || first == nil || first.URL == nil {
			first = nil
		}
	}
	if first != nil && sameOrigin(first.URL, req.URL) {
		return req
	}
	c := *req
	c.Header = req.Header.Clone()
	for k := range c.Header {
		if slices.ContainsFunc(credentialHeaders, func(h string) bool { return strings.EqualFold(h, k) }) {
			delete(c.Header, k)
		}
	}
	return &c
}

// hasCredentials reports whether h has a credential header, in any case.
func hasCredentials(h http.Header) bool {
	for k := range h {
		if slices.ContainsFunc(credentialHeaders, func(h string) bool { return strings.EqualFold(h, k) }) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (a missing port is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// isUnder reports whether u is base or below it: the same origin, and,
// once the dot segments of both paths are removed (see removeDots), a
// path that is base's path or continues it after a "/". A path with a
// segment that a server could read as a dot segment in another way is
// under nothing.
func isUnder(base, u *url.URL) bool {
	if !sameOrigin(base, u) {
		return false
	}
	b, okBase := removeDots(base.EscapedPath())
	p, ok := removeDots(u.EscapedPath())
	if !okBase || !ok {
		return false
	}
	prefix := strings.TrimSuffix(b, "/")
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// removeDots removes the dot segments of an escaped path as RFC 3986
// (section 5.2.4) does when it resolves a reference, with dots written as
// %2E (in any case) counted as dots, since servers decode them first:
// "/v1/x/../y" and "/v1/x/%2e%2e/y" are "/v1/y", and ".." above the root
// stays at the root. ok is false when a segment, percent-decoded, holds a
// "." or ".." that some server would still climb with: one followed by
// ";" ("..;", read as ".." by servlet containers), or beside a "/" or "\"
// that the decoding made ("..%2F", "..%5C").
func removeDots(escaped string) (path string, ok bool) {
	if escaped == "" {
		return "", true
	}
	segs := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	out := make([]string, 0, len(segs))
	dir := false // the path ends with "/" after a dot segment
	for _, seg := range segs {
		dots, ok := dotSegment(seg)
		if !ok {
			return "", false
		}
		switch dots {
		case 0:
			out = append(out, seg)
			dir = false
		case 1:
			dir = true
		case 2:
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			dir = true
		}
	}
	path = "/" + strings.Join(out, "/")
	if dir && len(out) > 0 {
		path += "/"
	}
	return path, true
}

// dotSegment reports how many dots the escaped path segment seg is: 1 for
// "." and 2 for "..", in any percent-encoding, else 0; ok is false for a
// segment that is not one but that a server could read as one (see
// removeDots).
func dotSegment(seg string) (dots int, ok bool) {
	if !strings.Contains(seg, ".") && !strings.Contains(seg, "%") {
		return 0, true
	}
	dec, err := url.PathUnescape(seg)
	if err != nil {
		return 0, true // not a valid escape: no server decodes it to dots
	}
	switch dec {
	case ".":
		return 1, true
	case "..":
		return 2, true
	}
	for _, part := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part, _, _ = strings.Cut(part, ";"); part == "." || part == ".." {
			return 0, false
		}
	}
	return 0, true
}

// underBase is the Client's home for credentials on a redirect: URLs
// under BaseURL.
func (c *Client) underBase(_, target *url.URL) bool {
	base, err := url.Parse(c.baseURL())
	return err == nil && isUnder(base, target)
}

// newRequest builds the request of a call, with its JSON body, headers
// and credentials.
func (c *Client) newRequest(ctx context.Context, method, path string, in any) (*http.Request, error) {
	u, err := c.resolve(path)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("neuracraft: %s %s: encoding the request body: %w", method, u.EscapedPath(), err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("neuracraft: %s %s: %w", method, u.EscapedPath(), err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	key := c.apiKey()
	if c.Token != "" || key != "" {
		if u.Scheme != "https" && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("neuracraft: %s %s: refusing to send credentials over %s to %s; use https",
				method, u.EscapedPath(), u.Scheme, u.Host)
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		} else {
			req.Header.Set("X-API-Key", key)
		}
	}
	return req, nil
}

// resolve turns a call's path into a URL under the base URL.
func (c *Client) resolve(path string) (*url.URL, error) {
	raw := c.baseURL()
	base, err := url.Parse(raw)
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("neuracraft: invalid base URL %q: want an absolute http(s) URL", redactRaw(raw))
	}
	ref, err := url.Parse(path)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // url.Error repeats the whole input, query included
		}
		return nil, fmt.Errorf("neuracraft: invalid path %q: %w", withoutQuery(path), err)
	}
	u, escaped, shown := *ref, ref.EscapedPath(), redactURL(ref)
	if !ref.IsAbs() {
		// Join the escaped forms, so that an escaped "/" in a segment
		// ("team%2Fetl") stays one segment.
		u = *base
		u.RawQuery = ref.RawQuery
		escaped = strings.TrimSuffix(base.EscapedPath(), "/") + "/" + strings.TrimPrefix(escaped, "/")
		shown = strconv.Quote(withoutQuery(path))
	}
	// One rule for both forms: the path with its dot segments resolved
	// must be under BaseURL, and is what is sent.
	clean, ok := removeDots(escaped)
	if !ok {
		return nil, fmt.Errorf("neuracraft: %s is not under the base URL %s: a segment reads as \"..\" to some servers; "+
			"credentials are only sent under the base URL", shown, redactURL(base))
	}
	u.RawPath = clean
	if u.Path, err = url.PathUnescape(clean); err != nil {
		return nil, fmt.Errorf("neuracraft: invalid path %q: %w", withoutQuery(path), err)
	}
	if !isUnder(base, &u) {
		return nil, fmt.Errorf("neuracraft: %s is not under the base URL %s (it resolves to %s); "+
			"credentials are only sent under the base URL", shown, redactURL(base), u.EscapedPath())
	}
	return &u, nil
}

// withoutQuery is a call's path for an error message: its query and
// fragment, which may hold secrets, are replaced by "?...".
func withoutQuery(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i] + "?..."
	}
	return path
}

// redactRaw is redactURL for a string that may not parse.
func redactRaw(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return redactURL(u)
	}
	return "(unparsable)"
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// The credentials a request carries never appear in an error of this
// package, wherever a server echoes them. The rule, applied by the
// Transport to every error it returns for a request (with the credentials
// of the request and of the requests of its redirect chain), and by a
// Client to every error it returns (with its own APIKey and Token):
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
// A credential is the whole value of an X-API-Key header, the credentials
// of an Authorization header (after its scheme, such as "Bearer"), and the
// password of Basic credentials, each trimmed of white space.

// credentialHeaders are the request headers that carry credentials: the
// ones a redirect to another origin goes without, and whose values never
// appear in an error.
var credentialHeaders = []string{"X-Api-Key", "Authorization"}

// maxRedirectChain bounds the walk back along a request's redirect chain
// (req.Response.Request...); http.Client stops after 10 redirects.
const maxRedirectChain = 64

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
				scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
				if !ok {
					out = appendSecret(out, v)
					continue
				}
				out = appendSecret(out, cred)
				if strings.EqualFold(scheme, "Basic") {
					if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
						_, pass, _ := strings.Cut(string(raw), ":")
						out = appendSecret(out, pass)
					}
				}
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

// credentialsOf returns the credentials of req and of the requests before
// it in its redirect chain.
func credentialsOf(req *http.Request) []string {
	var out []string
	for i := 0; req != nil && i < maxRedirectChain; i++ {
		for _, s := range credentialsIn(req.Header) {
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
		return &hiddenError{text: cleanHiding(text, maxLogText, secrets), err: err}
	}
	return err
}

// hiddenError is an error whose text held a secret: its text with the
// secret hidden, unwrapping to the error itself.
type hiddenError struct {
	text string
	err  error
}

func (e *hiddenError) Error() string { return e.text }
func (e *hiddenError) Unwrap() error { return e.err }

// hide hides secrets in every field of e that can hold server text.
func (e *APIError) hide(secrets []string) {
	e.Message = cleanHiding(e.Message, maxMessage, secrets)
	e.Reason = cleanHiding(e.Reason, maxReason, secrets)
	e.RequestID = cleanHiding(e.RequestID, maxHeaderValue, secrets)
	e.Method, e.URL = hideSecrets(e.Method, secrets), hideSecrets(e.URL, secrets)
	e.Details = hideJSON(e.Details, secrets)
	e.Header = hideHeader(e.Header, secrets)
	e.Body = hideBody(e.Body, secrets)
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
	if containsAny(string(body), secrets) { // no copy: the compiler converts for the call
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
	if len(raw) == 0 || (!containsAny(string(raw), secrets) && bytes.IndexByte(raw, '\\') < 0) {
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
