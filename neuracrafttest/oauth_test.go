package neuracrafttest

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenEndpointIssuesScopedTokens(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	defer srv.Close()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID},
		"client_secret": {srv.ClientSecret}, "scope": {"pipeline:read"}}
	status, hdr, doc := postToken(t, srv, form, "", "")
	require.Equal(t, http.StatusOK, status, doc)
	assert.Equal(t, "no-store", hdr.Get("Cache-Control"))
	token, _ := doc["access_token"].(string)
	require.NotEmpty(t, token)
	delete(doc, "access_token")
	assert.Empty(t, cmp.Diff(map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "scope": "pipeline:read"}, doc))

	status, _ = getWithToken(t, srv, "GET", "/pipelines", token)
	assert.Equal(t, http.StatusOK, status)
	status, hdr = getWithToken(t, srv, "POST", "/pipelines", token)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`)

	// HTTP Basic authentication, and no scope: every scope of the client.
	srv.AddClient("svc id", "s3cr:et", "pipeline:read", "workflow:execute")
	status, _, doc = postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, "svc id", "s3cr:et")
	require.Equal(t, http.StatusOK, status, doc)
	assert.Equal(t, "pipeline:read workflow:execute", doc["scope"])

	require.Len(t, srv.RequestsFor("POST /oauth/token"), 2)
}

func TestTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	defer srv.Close()
	srv.AddClient("reader", "reader-secret", "pipeline:read")
	good := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {srv.ClientID}, "client_secret": {srv.ClientSecret}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	tests := []struct {
		name        string
		form        url.Values
		basic       [2]string
		status      int
		code        string
		wwwAuthBase bool
	}{
		{"wrong secret", good("client_secret", "nope"), [2]string{}, 401, "invalid_client", false},
		{"unknown client", good("client_id", "nobody"), [2]string{}, 401, "invalid_client", false},
		{"no client", good("client_id", "", "client_secret", ""), [2]string{}, 401, "invalid_client", false},
		{"wrong Basic secret", url.Values{"grant_type": {"client_credentials"}}, [2]string{srv.ClientID, "nope"}, 401, "invalid_client", true},
		{"two methods", good(), [2]string{srv.ClientID, srv.ClientSecret}, 400, "invalid_request", false},
		{"no grant", good("grant_type", ""), [2]string{}, 400, "invalid_request", false},
		{"password grant", good("grant_type", "password"), [2]string{}, 400, "unsupported_grant_type", false},
		{"unknown scope", good("scope", "pipeline:read teleport"), [2]string{}, 400, "invalid_scope", false},
		{"scope beyond the client's", good("client_id", "reader", "client_secret", "reader-secret", "scope", "pipeline:write"), [2]string{}, 400, "invalid_scope", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, doc := postToken(t, srv, tt.form, tt.basic[0], tt.basic[1])
			assert.Equal(t, tt.status, status)
			assert.Equal(t, tt.code, doc["error"])
			assert.NotEmpty(t, doc["error_description"])
			assert.Len(t, doc, 2, "RFC 6749 shape: error and error_description only")
			assert.Equal(t, tt.wwwAuthBase, strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic"))
			assert.NotContains(t, doc["error_description"], srv.ClientSecret)
		})
	}

	t.Run("JSON body", func(t *testing.T) {
		resp, err := http.Post(srv.TokenURL, "application/json", strings.NewReader(`{"grant_type":"client_credentials"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(srv.TokenURL)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "POST", resp.Header.Get("Allow"))
	})
	t.Run("a fault on the token route", func(t *testing.T) {
		srv.Fail("POST /oauth/token", 1, RateLimit("1"))
		status, _, _ := postToken(t, srv, good(), "", "")
		assert.Equal(t, http.StatusTooManyRequests, status)
	})
}

// TestIssuedTokensExpire: a token is accepted until its lifetime ends,
// then answered 401 invalid_token naming the expiry.
func TestIssuedTokensExpire(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	defer srv.Close()
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	srv.mu.Lock()
	srv.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv.mu.Unlock()
	srv.SetTokenLifetime(time.Minute)

	status, _, doc := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, srv.ClientID, srv.ClientSecret)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, 60.0, doc["expires_in"])
	token := doc["access_token"].(string)

	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	advance(59 * time.Second)
	status, _ = getWithToken(t, srv, "GET", "/pipelines", token)
	assert.Equal(t, http.StatusOK, status)
	advance(time.Second)
	status, hdr := getWithToken(t, srv, "GET", "/pipelines", token)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), `error_description="The access token expired"`)

	// Server.Token never expires.
	status, _ = getWithToken(t, srv, "GET", "/pipelines", srv.Token)
	assert.Equal(t, http.StatusOK, status)
	assert.Panics(t, func() { srv.SetTokenLifetime(0) })
	assert.Panics(t, func() { srv.AddClient("", "x") })
}

// TestTLSServerSpeaksHTTP2: NewTLSServer serves the API and the token
// endpoint over HTTPS with HTTP/2 to the client it returns; a
// ResetConnection fault resets the stream.
func TestTLSServerSpeaksHTTP2(t *testing.T) {
	t.Parallel()
	srv := NewTLSServer()
	defer srv.Close()
	require.True(t, strings.HasPrefix(srv.URL, "https://127.0.0.1:"), srv.URL)
	require.True(t, strings.HasPrefix(srv.TokenURL, "https://"), srv.TokenURL)

	req, err := http.NewRequest("GET", srv.URL+"/pipelines", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", srv.APIKey)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HTTP/2.0", resp.Proto)

	status, _, doc := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, srv.ClientID, srv.ClientSecret)
	require.Equal(t, http.StatusOK, status, doc)

	srv.Fail("GET /pipelines", 1, ResetConnection())
	_, err = srv.Client().Do(req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "INTERNAL_ERROR")

	// A default client does not trust the test certificate.
	_, err = http.Get(srv.URL + "/pipelines")
	require.Error(t, err)
}
