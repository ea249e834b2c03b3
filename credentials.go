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
			req.Header.Del("X-API-Key")
			req.Header.Del("Authorization")
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

// isUnder reports whether u is base or below it: the same origin, and a
// path that is base's path or continues it after a "/", with no ".."
// segment that could climb out of it.
func isUnder(base, u *url.URL) bool {
	if !sameOrigin(base, u) || slices.Contains(strings.Split(u.Path, "/"), "..") {
		return false
	}
	prefix := strings.TrimSuffix(base.EscapedPath(), "/")
	p := u.EscapedPath()
	return p == prefix || strings.HasPrefix(p, prefix+"/")
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
	if ref.IsAbs() {
		if !isUnder(base, ref) {
			return nil, fmt.Errorf("neuracraft: URL %s is not under the base URL %s; credentials are only sent there",
				redactURL(ref), redactURL(base))
		}
		return ref, nil
	}
	// Join the escaped forms, so that an escaped "/" in a segment
	// ("team%2Fetl") stays one segment.
	u := *base
	u.RawPath = strings.TrimSuffix(base.EscapedPath(), "/") + "/" + strings.TrimPrefix(ref.EscapedPath(), "/")
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, fmt.Errorf("neuracraft: invalid path %q: %w", withoutQuery(path), err)
	}
	u.RawQuery = ref.RawQuery
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
