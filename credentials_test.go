// Tests of where credentials may go (credentials.go): the rule that keeps
// a call's path under BaseURL, how a Client prints and logs itself, an
// invalid path's error, and the errors of a request that cannot be built.
// credentials_redirect_test.go has the redirects, client_credentials_test.go
// the same rules as a caller meets them.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// TestClientInvalidPathHidesQuery: an invalid path is reported without
// its query, and without url.Parse's echo of the whole input.
func TestClientInvalidPathHidesQuery(t *testing.T) {
	t.Parallel()
	c := &Client{BaseURL: "https://api.neuracraft.com/v1", APIKey: "nc_KEY"}
	for _, path := range []string{
		"/pipelines/%zz?token=QUERY_SECRET",
		"/pipelines?token=QUERY_SECRET\x7f",
		"/pipe%zz#QUERY_SECRET",
	} {
		_, err := c.Do(context.Background(), "GET", path, nil, nil)
		require.Error(t, err, path)
		assert.NotContains(t, err.Error(), "QUERY_SECRET")
		assert.Contains(t, err.Error(), "neuracraft: invalid path")
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

// TestClientPrintsNoSecret formats a Client with every verb: neither its
// credentials nor the user information and secret query values of its
// BaseURL appear.
func TestClientPrintsNoSecret(t *testing.T) {
	t.Parallel()
	secrets := []string{"nc_KEY_SECRET", "TOKEN_SECRET", "PW_SECRET", "QUERY_SECRET"}
	clients := []*Client{
		{BaseURL: "https://alice:PW_SECRET@api.neuracraft.com/v1?api_key=QUERY_SECRET&region=eu", APIKey: "nc_KEY_SECRET"},
		{BaseURL: "https://api.neuracraft.com/v1?access_token=QUERY_SECRET", Token: "TOKEN_SECRET"},
	}
	for _, c := range clients {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%T %v"} {
			out := fmt.Sprintf(verb, c)
			for _, s := range secrets {
				assert.NotContains(t, out, s, "verb %s", verb)
			}
		}
		assert.Contains(t, c.String(), "api.neuracraft.com/v1")
	}
	assert.Equal(t, `neuracraft.Client{BaseURL: "https://api.neuracraft.com/v1?api_key=REDACTED&region=eu", credentials: API key}`,
		clients[0].String())
	assert.Equal(t, fmt.Sprintf("%q", clients[0].String()), fmt.Sprintf("%q", clients[0]))
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
