// This file decides what a Client sends where: the request it builds, the
// URL a path resolves to, where credentials may go (HTTPS, under BaseURL,
// not across redirects to another origin), and how a Client prints itself
// without them.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
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

// Format prints String for every verb (%q quotes it), so that no verb,
// %#v, %d and %x included, prints the Client's fields.
func (c *Client) Format(f fmt.State, verb rune) { formatText(f, verb, c.String()) }

// LogValue implements [slog.LogValuer] with String, so that slog's JSON
// handler does not encode the Client's fields, credentials included.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

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

// credentialHeaders are the request headers that carry credentials: the
// ones a redirect to another origin goes without, and whose values never
// appear in an error.
var credentialHeaders = []string{"X-Api-Key", "Authorization"}

// maxRedirectChain bounds the walk back along a request's redirect chain
// (req.Response.Request...); http.Client stops after 10 redirects.
const maxRedirectChain = 64

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
	fail := func(err error) error { return &callError{method: method, path: u.EscapedPath(), err: err} }
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fail(fmt.Errorf("encoding the request body: %w", err))
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fail(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	key := c.apiKey()
	if c.Token != "" || key != "" {
		if u.Scheme != "https" && !isLoopback(u.Hostname()) {
			return nil, fail(fmt.Errorf("refusing to send credentials over %s to %s; use https", u.Scheme, u.Host))
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
		return nil, errors.New(errorLine("", "", "invalid base URL "+strconv.Quote(redactRaw(raw)), "want an absolute http(s) URL"))
	}
	ref, err := url.Parse(path)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // url.Error repeats the whole input, query included
		}
		return nil, invalidPath(path, err)
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
		return nil, errors.New(errorLine("", "", shown+" is not under the base URL "+redactURL(base),
			`a segment reads as ".." to some servers; credentials are only sent under the base URL`))
	}
	u.RawPath = clean
	if u.Path, err = url.PathUnescape(clean); err != nil {
		return nil, invalidPath(path, err)
	}
	if !isUnder(base, &u) {
		return nil, errors.New(errorLine("", "", shown+" is not under the base URL "+redactURL(base),
			"it resolves to "+u.EscapedPath()+"; credentials are only sent under the base URL"))
	}
	return &u, nil
}

// invalidPath is the error of a path that does not parse: one line
// without the path's query, unwrapping to why.
func invalidPath(path string, why error) error {
	return &textError{text: errorLine("", "", "invalid path "+strconv.Quote(withoutQuery(path)), why.Error()), err: why}
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
