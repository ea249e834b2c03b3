// Tests of where credentials go on a redirect (credentials.go): the
// Transport's rule that keeps them at the first request's origin, on chains
// built by hand and on loopback servers; WrapClient's redirect policy,
// which keeps the caller's own; and a Client's rule that keeps them under
// its BaseURL.

package neuracraft

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeepCredentialsAtOrigin: the rule on redirect chains built by
// hand: another scheme drops the credentials, the same origin keeps them
// (the request itself is returned), and a chain that cannot be followed
// back to its first request drops them.
func TestKeepCredentialsAtOrigin(t *testing.T) {
	t.Parallel()
	hop := func(target string, prev *http.Request) *http.Request {
		req := httptest.NewRequest("GET", target, nil)
		req.RequestURI = ""
		req.Header.Set("X-Api-Key", echoKey)
		req.Header["authorization"] = []string{"Bearer " + echoToken} // not canonical: dropped all the same
		if prev != nil {
			req.Response = &http.Response{StatusCode: http.StatusFound, Request: prev}
		}
		return req
	}
	first := hop("https://api.neuracraft.com/v1/a", nil)
	tests := []struct {
		name string
		req  *http.Request
		keep bool
	}{
		{"first request", first, true},
		{"same origin", hop("https://API.neuracraft.com:443/v1/b", first), true},
		{"same origin after a hop elsewhere", hop("https://api.neuracraft.com/v1/c", hop("https://evil.example/", first)), true},
		{"another scheme", hop("http://api.neuracraft.com/v1/b", first), false},
		{"another port", hop("https://api.neuracraft.com:8443/v1/b", first), false},
		{"another host", hop("https://neuracraft.com/v1/b", first), false},
		{"chain broken", hop("https://api.neuracraft.com/v1/b", &http.Request{Response: &http.Response{}}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keepCredentialsAtOrigin(tt.req)
			if tt.keep {
				require.Same(t, tt.req, got)
				return
			}
			require.NotSame(t, tt.req, got)
			assert.False(t, hasCredentials(got.Header), "%v", got.Header)
			assert.True(t, hasCredentials(tt.req.Header), "the request was modified")
			assert.Equal(t, tt.req.URL, got.URL)
		})
	}
}

// TestTransportRedirectKeepsCredentialsAtOrigin: through a hand-built
// Transport (the README's way to choose settings) and through
// WrapClient, a redirect to another port or another host of loopback
// servers arrives without X-API-Key and Authorization, one within the
// origin with both, and the caller's own redirect policy still runs.
func TestTransportRedirectKeepsCredentialsAtOrigin(t *testing.T) {
	t.Parallel()
	var log headerLog
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { log.record(r) }))
	defer elsewhere.Close()
	otherHost := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1) // same server, another host name
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
		switch r.URL.Path {
		case "/v1/port":
			http.Redirect(w, r, elsewhere.URL+"/port", http.StatusFound)
		case "/v1/host":
			http.Redirect(w, r, otherHost+"/host", http.StatusTemporaryRedirect)
		case "/v1/near":
			http.Redirect(w, r, "/v1/landed", http.StatusFound)
		}
	}))
	defer home.Close()

	var policyCalls int
	handBuilt := &http.Client{Transport: &Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error {
		policyCalls++
		return nil
	}}
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{{"hand-built Transport", handBuilt}, {"WrapClient", WrapClient(nil)}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/port", "/v1/host", "/v1/near"} {
				req, err := http.NewRequest("GET", home.URL+path, nil)
				require.NoError(t, err)
				req.Header.Set("X-API-Key", echoKey)
				req.Header.Set("Authorization", "Bearer "+echoToken)
				resp, err := tc.client.Do(req)
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, echoKey, req.Header.Get("X-API-Key"), "the caller's request was modified")
			}
			for _, landed := range []string{"/port", "/host"} {
				got, ok := log.get(landed)
				require.True(t, ok, landed)
				assert.Equal(t, [2]string{"", ""}, got, "credentials followed a redirect to %s", landed)
			}
			got, ok := log.get("/v1/landed")
			require.True(t, ok)
			assert.Equal(t, [2]string{echoKey, "Bearer " + echoToken}, got, "a redirect within the origin keeps them")
		})
	}
	assert.Equal(t, 3, policyCalls, "the caller's CheckRedirect runs as before")
}

// TestWrapClientKeepsCredentialsHome: the wrapped client drops X-API-Key
// and Authorization on a redirect to another port (another origin), keeps
// them on a redirect within the origin, and still runs the caller's own
// redirect policy.
func TestWrapClientKeepsCredentialsHome(t *testing.T) {
	t.Parallel()
	var log headerLog
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
	}))
	defer elsewhere.Close()
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
		switch r.URL.Path {
		case "/v1/away":
			http.Redirect(w, r, elsewhere.URL+"/landed", http.StatusFound)
		case "/v1/near":
			http.Redirect(w, r, "/v1/landed", http.StatusFound)
		}
	}))
	defer home.Close()

	var policyCalls int
	own := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		policyCalls++
		return nil
	}}
	client := WrapClient(own)
	get := func(path string) {
		t.Helper()
		req, err := http.NewRequest("GET", home.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("X-API-Key", "nc_SECRET_KEY")
		req.Header.Set("Authorization", "Bearer SECRET_TOKEN")
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}

	get("/v1/away")
	got, ok := log.get("/landed")
	require.True(t, ok)
	assert.Equal(t, [2]string{"", ""}, got, "credentials followed a redirect to another origin")

	get("/v1/near")
	got, ok = log.get("/v1/landed")
	require.True(t, ok)
	assert.Equal(t, [2]string{"nc_SECRET_KEY", "Bearer SECRET_TOKEN"}, got)

	assert.Equal(t, 2, policyCalls, "the caller's redirect policy was not kept")
	assert.Nil(t, own.Transport, "the caller's client was modified")

	// The caller's policy still decides: ErrUseLastResponse stops at the 302.
	stop := WrapClient(&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}})
	resp, err := stop.Get(home.URL + "/v1/away")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode)
}

// TestWrapClientDefaultRedirectLimit: with no policy of the caller's, the
// wrapped client stops after 10 redirects like net/http's default.
func TestWrapClientDefaultRedirectLimit(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	}))
	defer srv.Close()
	_, err := WrapClient(nil).Get(srv.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stopped after 10 redirects")
}

func TestSameOriginAndIsUnder(t *testing.T) {
	t.Parallel()
	base := mustURL(t, "https://api.neuracraft.com/v1")
	tests := []struct {
		target      string
		same, under bool
	}{
		{"https://api.neuracraft.com/v1/pipelines", true, true},
		{"https://API.neuracraft.com:443/v1", true, true},
		{"https://api.neuracraft.com/v1/", true, true},
		{"https://api.neuracraft.com/v10/pipelines", true, false},
		{"https://api.neuracraft.com/admin", true, false},
		{"https://api.neuracraft.com/v1/../admin", true, false},
		{"http://api.neuracraft.com/v1/pipelines", false, false},
		{"https://api.neuracraft.com:8443/v1/pipelines", false, false},
		{"https://evil.example/v1/pipelines", false, false},
	}
	for _, tt := range tests {
		u := mustURL(t, tt.target)
		assert.Equal(t, tt.same, sameOrigin(base, u), "sameOrigin %s", tt.target)
		assert.Equal(t, tt.under, isUnder(base, u), "isUnder %s", tt.target)
	}
}

// TestClientCredentialsOnlyUnderBaseURL: a same-host redirect outside the
// base path carries no credentials; one within it does.
func TestClientCredentialsOnlyUnderBaseURL(t *testing.T) {
	t.Parallel()
	var log headerLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
		switch r.URL.Path {
		case "/api/v1/out":
			http.Redirect(w, r, "/admin/landed", http.StatusFound)
		case "/api/v1/in":
			http.Redirect(w, r, "/api/v1/landed", http.StatusFound)
		default:
			_, _ = w.Write([]byte("{}"))
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		c    *Client
	}{
		{"api key", &Client{BaseURL: srv.URL + "/api/v1", APIKey: "nc_SECRET_KEY"}},
		{"token", &Client{BaseURL: srv.URL + "/api/v1", Token: "SECRET_TOKEN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Do(context.Background(), "GET", "/out", nil, nil)
			require.NoError(t, err)
			got, ok := log.get("/admin/landed")
			require.True(t, ok)
			assert.Equal(t, [2]string{"", ""}, got)

			_, err = tc.c.Do(context.Background(), "GET", "/in", nil, nil)
			require.NoError(t, err)
			got, ok = log.get("/api/v1/landed")
			require.True(t, ok)
			assert.NotEqual(t, [2]string{"", ""}, got)
		})
	}
}

// TestClientRedirectOutOfBaseWithEncodedDots: a same-origin redirect
// whose path climbs out of BaseURL with %2E dots is followed without the
// credentials.
func TestClientRedirectOutOfBaseWithEncodedDots(t *testing.T) {
	t.Parallel()
	var log headerLog
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
		if r.URL.Path == "/v1/out" {
			w.Header().Set("Location", "/v1/%2e%2e/admin")
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v1", APIKey: echoKey}
	_, err := c.Do(t.Context(), "GET", "/out", nil, nil)
	require.NoError(t, err)
	got, ok := log.get("/v1/../admin") // as the server's router decodes it
	require.True(t, ok, "the redirect was not followed")
	assert.Equal(t, [2]string{"", ""}, got)
}

// mustURL parses raw.
func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}
