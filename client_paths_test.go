// Tests of how Client turns a call's path into a URL: joining with
// BaseURL, escaped segments, absolute URLs and invalid base URLs.

package neuracraft_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientPathJoining checks how a call's path is joined to BaseURL.
func TestClientPathJoining(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t)
	p := createPipeline(t, srv, c, "nightly-etl")
	tests := []struct {
		name      string
		base      string
		path      string
		wantPath  string
		wantQuery url.Values
	}{
		{"leading slash", srv.URL, "/pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"no leading slash", srv.URL, "pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"base with trailing slash", srv.URL + "/", "/pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"base with trailing slash, no leading slash", srv.URL + "/", "pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"query", srv.URL, "/pipelines?limit=1&offset=0", "/v1/pipelines", url.Values{"limit": {"1"}, "offset": {"0"}}},
		{"query, no leading slash", srv.URL, "pipelines?limit=1&offset=0", "/v1/pipelines", url.Values{"limit": {"1"}, "offset": {"0"}}},
		{"absolute URL under BaseURL", srv.URL, srv.URL + "/pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"absolute URL with query", srv.URL, srv.URL + "/pipelines?limit=1", "/v1/pipelines", url.Values{"limit": {"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			c := &neuracraft.Client{BaseURL: tt.base, APIKey: srv.APIKey}
			resp, err := c.Do(t.Context(), "GET", tt.path, nil, nil)
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			reqs := srv.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tt.wantPath, reqs[0].Path)
			require.Empty(t, cmp.Diff(tt.wantQuery, reqs[0].Query, cmpopts.EquateEmpty()))
		})
	}
}

// TestClientEscapedPath checks that a path segment the caller escaped, such
// as an ID with a slash made with url.PathEscape, reaches the server as
// sent and is not turned into two segments.
func TestClientEscapedPath(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(ts.Close)

	c := &neuracraft.Client{BaseURL: ts.URL + "/v1", APIKey: secretKey}
	for _, path := range []string{
		"/pipelines/" + url.PathEscape("team/etl"),
		"/pipelines/" + url.PathEscape("a b") + "/run",
		ts.URL + "/v1/pipelines/" + url.PathEscape("team/etl"),
	} {
		_, err := c.Do(t.Context(), "POST", path, nil, nil)
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, cmp.Diff([]string{
		"/v1/pipelines/team%2Fetl",
		"/v1/pipelines/a%20b/run",
		"/v1/pipelines/team%2Fetl",
	}, got))
}

// TestClientAbsoluteURLElsewhere checks that an absolute URL outside
// BaseURL is refused before anything is sent.
func TestClientAbsoluteURLElsewhere(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t)
	other := neuracrafttest.NewServer()
	t.Cleanup(other.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	for _, target := range []string{
		other.URL + "/pipelines",                                             // another port
		"http://localhost:" + u.Port() + "/v1/pipelines",                     // another host name
		"https://" + u.Host + "/v1/pipelines",                                // another scheme
		"http://" + u.Host + "/v2/pipelines",                                 // outside the base path
		"http://" + u.Host + "/v1extra/pipelines",                            // a prefix that is not a path prefix
		"http://" + u.Host + "/pipelines",                                    // above the base path
		"https://evil.example/v1/pipelines?next=" + url.QueryEscape(srv.URL), // base URL in the query
	} {
		t.Run(target, func(t *testing.T) {
			resp, err := c.Do(t.Context(), "GET", target, nil, nil)
			require.Nil(t, resp)
			require.Error(t, err)
			require.Contains(t, err.Error(), "not under the base URL")
			require.Empty(t, srv.Requests())
			require.Empty(t, other.Requests())
		})
	}
}

// TestClientInvalidBaseURL checks that a BaseURL that is not an absolute
// http(s) URL fails before anything is sent, without printing user
// information.
func TestClientInvalidBaseURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{
		"api.neuracraft.com/v1",
		"/v1",
		"ftp://api.neuracraft.com/v1",
		"ftp://user:" + secretKey + "@api.neuracraft.com/v1",
		"https://",
		"http://[::1/v1",
		"://api.neuracraft.com",
	} {
		t.Run(base, func(t *testing.T) {
			hc, sent := noNetwork()
			c := &neuracraft.Client{BaseURL: base, APIKey: secretKey, HTTPClient: hc}
			resp, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			require.Nil(t, resp)
			require.Error(t, err)
			require.Contains(t, err.Error(), "invalid base URL")
			require.NotContains(t, err.Error(), secretKey)
			require.Zero(t, sent.Load())
		})
	}
}
