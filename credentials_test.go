// Tests of where credentials may go (credentials.go): the Transport's
// redirect rule, the rule that keeps a call's path under BaseURL, how a
// Client logs, and the errors of a request that cannot be built.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoKey and echoToken are the credentials the echoing servers below
// repeat back in every part of their answers.
const (
	echoKey   = "nc_live_ECHOKEY0123456789"
	echoToken = "nc_oauth_ECHOTOKEN987654"
)

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

// TestClientPathsStayUnderBaseURL: one rule for relative and absolute
// forms: the path with its dot segments resolved (dots written as %2E
// too) must be under BaseURL, else the call fails unsent; when it is, the
// resolved path is what is sent.
func TestClientPathsStayUnderBaseURL(t *testing.T) {
	t.Parallel()
	var log headerLog
	var sent atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.record(r)
		sent.Add(1)
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL + "/v1", APIKey: echoKey}
	for _, path := range []string{
		"/../admin",
		"../admin",
		"/%2e%2e/admin",
		"/%2E%2E/admin",
		"/.%2e/admin",
		"/pipelines/../../admin",
		"/pipelines/%2e%2e/%2e%2e/admin",
		srv.URL + "/v1/../admin",
		srv.URL + "/v1/%2e%2e/admin",
		"/..;/admin",         // a servlet container reads "..;" as ".."
		"/pipelines/..%2F..", // a server that decodes %2F before resolving
		"/pipelines/..%5C..%5Cadmin",
	} {
		t.Run(path, func(t *testing.T) {
			resp, err := c.Do(t.Context(), "GET", path, nil, nil)
			require.Nil(t, resp)
			require.ErrorContains(t, err, "is not under the base URL")
			require.ErrorContains(t, err, "credentials are only sent under the base URL")
		})
	}
	assert.Zero(t, sent.Load(), "a request was sent")

	for _, tc := range []struct{ path, sent string }{
		{"/pipelines/../runs", "/v1/runs"},
		{"./pipelines/./p1", "/v1/pipelines/p1"},
		{"/pipelines/%2e/p2", "/v1/pipelines/p2"},
		{"/pipelines/x/..", "/v1/pipelines/"},
		{srv.URL + "/v1/a/../runs/r1", "/v1/runs/r1"},
		{"/pipelines/a..b", "/v1/pipelines/a..b"},
		{"/pipelines/...", "/v1/pipelines/..."},
	} {
		_, err := c.Do(t.Context(), "GET", tc.path, nil, nil)
		require.NoError(t, err, tc.path)
		got, ok := log.get(tc.sent)
		require.True(t, ok, "%s: %s not sent", tc.path, tc.sent)
		assert.Equal(t, echoKey, got[0])
	}
}

// TestRemoveDots: RFC 3986's removal of dot segments, on escaped paths,
// with %2E counted as a dot, and the segments refused as ambiguous.
func TestRemoveDots(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"/", "/", true},
		{"/v1/pipelines", "/v1/pipelines", true},
		{"/v1/../admin", "/admin", true},
		{"/v1/%2e%2E/admin", "/admin", true},
		{"/v1/./x/.", "/v1/x/", true},
		{"/v1/x/..", "/v1/", true},
		{"/../../x", "/x", true},
		{"/v1//x", "/v1//x", true},
		{"/v1/team%2Fetl", "/v1/team%2Fetl", true},
		{"/v1/..;/admin", "", false},
		{"/v1/.;x/admin", "", false},
		{"/v1/..%2fadmin", "", false},
		{"/v1/a%5C..", "", false},
		{"/v1/%zz", "/v1/%zz", true},
	}
	for _, tt := range tests {
		got, ok := removeDots(tt.in)
		assert.Equal(t, tt.ok, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
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

// TestClientLogsNoSecret logs a Client with slog's JSON and text
// handlers: both log its String, never its fields (the JSON handler would
// otherwise encode APIKey, Token and the raw BaseURL).
func TestClientLogsNoSecret(t *testing.T) {
	t.Parallel()
	c := &Client{BaseURL: "https://alice:PW_SECRET@api.neuracraft.com/v1?api_key=QUERY_SECRET", APIKey: "nc_KEY_SECRET",
		Token: "TOKEN_SECRET"}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("client", "client", c)
		for _, s := range []string{"nc_KEY_SECRET", "TOKEN_SECRET", "PW_SECRET", "QUERY_SECRET"} {
			assert.NotContains(t, buf.String(), s, name)
		}
		assert.Contains(t, buf.String(), "credentials: bearer token", name)
	}
}

// TestNewRequestErrors: a request that cannot be built, or may not carry
// its credentials, fails with one line naming the call, and unwraps to
// the cause.
func TestNewRequestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		client  *Client
		method  string
		in      any
		want    string
		wantErr any // a pointer to the type errors.As must find, or nil
	}{
		{"body not JSON", &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: "k"}, "POST", make(chan int),
			"neuracraft: POST /v1/pipelines: encoding the request body: json: unsupported type: chan int",
			new(*json.UnsupportedTypeError)},
		{"invalid method", &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: "k"}, "BAD METHOD", nil,
			`neuracraft: BAD METHOD /v1/pipelines: net/http: invalid method "BAD METHOD"`, nil},
		{"credentials over plain HTTP", &Client{BaseURL: "http://api.neuracraft.com/v1", APIKey: "k"}, "GET", nil,
			"neuracraft: GET /v1/pipelines: refusing to send credentials over http to api.neuracraft.com; use https", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := tt.client.newRequest(context.Background(), tt.method, "/pipelines", tt.in)
			assert.Nil(t, req)
			require.EqualError(t, err, tt.want)
			if tt.wantErr != nil {
				assert.ErrorAs(t, err, tt.wantErr)
			}
		})
	}
}
