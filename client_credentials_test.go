// Tests that Client keeps its credentials home: never over plain HTTP,
// never across a redirect, never in an error, a log or a test's output.

package neuracraft_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientRefusesPlainHTTP checks that credentials are sent over plain
// HTTP only to loopback addresses, and that the check happens before any
// network I/O.
func TestClientRefusesPlainHTTP(t *testing.T) {
	tests := []struct {
		base   string
		key    string
		token  string
		refuse bool
	}{
		{base: "http://example.invalid/v1", key: secretKey, refuse: true},
		{base: "http://example.invalid/v1", token: secretToken, refuse: true},
		{base: "http://127.0.0.1.nip.io:8080/v1", key: secretKey, refuse: true},
		{base: "http://localhost.example.com/v1", key: secretKey, refuse: true},
		{base: "http://10.0.0.1/v1", key: secretKey, refuse: true},
		{base: "http://example.invalid/v1"}, // no credentials: allowed
		{base: "https://example.invalid/v1", key: secretKey},
		{base: "http://localhost:1/v1", key: secretKey},
		{base: "http://127.0.0.2:1/v1", key: secretKey},
		{base: "http://[::1]:1/v1", token: secretToken},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s key=%t token=%t", tt.base, tt.key != "", tt.token != "")
		t.Run(name, func(t *testing.T) {
			t.Setenv(neuracraft.EnvAPIKey, "")
			hc, sent := noNetwork()
			c := &neuracraft.Client{BaseURL: tt.base, APIKey: tt.key, Token: tt.token, HTTPClient: hc}
			_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			require.Error(t, err)
			if !tt.refuse {
				require.ErrorIs(t, err, errNoNetwork)
				require.Equal(t, int32(1), sent.Load())
				return
			}
			require.NotErrorIs(t, err, errNoNetwork)
			require.Contains(t, err.Error(), "refusing to send credentials")
			require.Zero(t, sent.Load(), "nothing may reach the transport")
		})
	}
}

// TestClientRedirectKeepsCredentials checks that a redirect does not carry
// the credentials to a host other than BaseURL's, while a redirect within
// the API keeps them.
func TestClientRedirectKeepsCredentials(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	received := map[string]http.Header{}
	record := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			received[name+" "+r.URL.Path] = r.Header.Clone()
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		})
	}
	elsewhere := httptest.NewServer(record("elsewhere"))
	t.Cleanup(elsewhere.Close)
	eu, err := url.Parse(elsewhere.URL)
	require.NoError(t, err)
	otherHost := "http://localhost:" + eu.Port() // 127.0.0.1 is the API's host name

	mux := http.NewServeMux()
	mux.Handle("/v1/moved", http.RedirectHandler("/v1/here", http.StatusFound))
	mux.Handle("/v1/away", http.RedirectHandler(otherHost+"/v1/there", http.StatusFound))
	mux.Handle("/v1/here", record("api"))
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)

	for _, tt := range []struct {
		name string
		c    *neuracraft.Client
	}{
		{"API key", &neuracraft.Client{BaseURL: api.URL + "/v1", APIKey: secretKey}},
		{"token", &neuracraft.Client{BaseURL: api.URL + "/v1", Token: secretToken}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			clear(received)
			mu.Unlock()

			_, err := tt.c.Do(t.Context(), "GET", "/moved", nil, nil)
			require.NoError(t, err)
			_, _ = tt.c.Do(t.Context(), "GET", "/away", nil, nil) // following or refusing are both fine

			mu.Lock()
			defer mu.Unlock()
			here := received["api /v1/here"]
			require.NotNil(t, here, "the redirect within the API is followed")
			require.True(t, here.Get("X-API-Key") == secretKey || here.Get("Authorization") == "Bearer "+secretToken,
				"credentials are kept within the API")
			if there := received["elsewhere /v1/there"]; there != nil {
				require.Empty(t, there.Get("X-API-Key"), "X-API-Key sent to another host after a redirect")
				require.Empty(t, there.Get("Authorization"), "Authorization sent to another host after a redirect")
			}
		})
	}
}

// TestClientSecrets checks that credentials appear in no error, in no
// formatting of the Client, and in no log line of either.
func TestClientSecrets(t *testing.T) {
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddAPIKey(secretKey, "pipeline:read")
	srv.AddToken(secretToken, "pipeline:read")
	t.Setenv(neuracraft.EnvAPIKey, "")

	// Two attempts and no budget, so that each scenario uses exactly the
	// faults it queues.
	policy := neuracraft.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond}
	over := func(base http.RoundTripper) *http.Client {
		return &http.Client{Transport: &neuracraft.Transport{Base: base, Retry: policy, DisableBudget: true}}
	}
	keyClient := &neuracraft.Client{BaseURL: srv.URL, APIKey: secretKey, HTTPClient: over(nil)}
	tokenClient := &neuracraft.Client{BaseURL: srv.URL, Token: secretToken, HTTPClient: over(nil)}
	resetClient := &neuracraft.Client{BaseURL: srv.URL, APIKey: secretKey,
		HTTPClient: over(&http.Transport{DisableKeepAlives: true})}
	ctx := t.Context()
	do := func(c *neuracraft.Client, method, path string) error {
		_, err := c.Do(ctx, method, path, map[string]string{"name": "x"}, &struct{}{})
		return err
	}
	stalled := func(c *neuracraft.Client) error {
		srv.Fail("GET /pipelines", 1, neuracrafttest.Stall(200))
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.Do(ctx, "GET", "/pipelines", nil, nil)
		return err
	}

	scenarios := []struct {
		name string
		err  func() error
	}{
		{"404", func() error { return do(keyClient, "GET", "/pipelines/pipe_missing") }},
		{"403", func() error { return do(keyClient, "POST", "/pipelines") }},
		{"403 token", func() error { return do(tokenClient, "POST", "/pipelines") }},
		{"401 key", func() error {
			return do(&neuracraft.Client{BaseURL: srv.URL, APIKey: secretKey + "x"}, "GET", "/pipelines")
		}},
		{"401 token", func() error {
			return do(&neuracraft.Client{BaseURL: srv.URL, Token: secretToken + "x"}, "GET", "/pipelines")
		}},
		{"500 exhausted", func() error {
			srv.Fail("GET /pipelines", 2, neuracrafttest.Error(500, "internal_error", "boom"))
			return do(keyClient, "GET", "/pipelines")
		}},
		{"502 HTML", func() error {
			srv.Fail("POST /pipelines", 1, neuracrafttest.ProxyHTML(502))
			return do(tokenClient, "POST", "/pipelines")
		}},
		{"plugin", func() error {
			srv.Fail("GET /pipelines", 1, neuracrafttest.Plugin(500, 8102, "PDF Export Plugin failed", false))
			return do(keyClient, "GET", "/pipelines")
		}},
		{"connection reset", func() error {
			srv.Fail("POST /pipelines", 1, neuracrafttest.ResetConnection())
			return do(resetClient, "POST", "/pipelines")
		}},
		{"truncated success", func() error {
			srv.Fail("GET /pipelines", 1, neuracrafttest.Truncated(200))
			return do(keyClient, "GET", "/pipelines")
		}},
		{"stall, key", func() error { return stalled(keyClient) }},
		{"stall, token", func() error { return stalled(tokenClient) }},
		{"plain HTTP refused", func() error {
			return do(&neuracraft.Client{BaseURL: "http://example.invalid/v1", APIKey: secretKey}, "GET", "/pipelines")
		}},
		{"plain HTTP refused, token", func() error {
			return do(&neuracraft.Client{BaseURL: "http://example.invalid/v1", Token: secretToken}, "GET", "/pipelines")
		}},
		{"other host", func() error { return do(keyClient, "GET", "https://evil.example/v1/pipelines") }},
		{"other host with user info", func() error {
			return do(keyClient, "GET", "https://u:"+secretKey+"@evil.example/v1/pipelines")
		}},
		{"base URL with user info", func() error {
			return do(&neuracraft.Client{BaseURL: "https://u:" + secretToken + "@" + strings.TrimPrefix(srv.URL, "http://"),
				APIKey: "k"}, "GET", "https://evil.example/v1")
		}},
		{"invalid base URL with user info", func() error {
			return do(&neuracraft.Client{BaseURL: "ftp://u:" + secretKey + "@example.com/v1", APIKey: secretKey},
				"GET", "/pipelines")
		}},
		{"secret in the query of an API error", func() error {
			srv.Fail("GET /pipelines", 1, neuracrafttest.Error(400, "invalid_request", "bad"))
			return do(keyClient, "GET", "/pipelines?api_key="+secretKey)
		}},
		{"secret in the query of a network error", func() error {
			srv.Fail("POST /pipelines", 1, neuracrafttest.ResetConnection())
			return do(resetClient, "POST", "/pipelines?api_key="+secretKey)
		}},
		{"rate limited, then held back", func() error {
			c := &neuracraft.Client{BaseURL: srv.URL, APIKey: secretKey, HTTPClient: retrying(nil, neuracraft.RetryPolicy{MaxAttempts: 1})}
			srv.Fail("GET /pipelines", 1, neuracrafttest.RateLimit("30"))
			if err := do(c, "GET", "/pipelines"); err == nil {
				return errors.New("want a 429")
			}
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := c.Do(ctx, "GET", "/pipelines", nil, nil)
			return err
		}},
	}
	secrets := []string{secretKey, secretToken, "SECRET"}
	requireNoSecret := func(t *testing.T, what, s string) {
		t.Helper()
		for _, secret := range secrets {
			require.NotContains(t, s, secret, "%s leaks a credential", what)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			err := sc.err()
			require.Error(t, err)
			requireNoSecret(t, "Error()", err.Error())
			requireNoSecret(t, "%v %+v %#v %q", fmt.Sprintf("%v %+v %#v %q", err, err, err, err))
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Error("call failed", "err", err)
			slog.New(slog.NewTextHandler(&buf, nil)).Error("call failed", "err", err)
			requireNoSecret(t, "slog", buf.String())
		})
	}

	t.Run("Client formatting", func(t *testing.T) {
		for _, c := range []*neuracraft.Client{keyClient, tokenClient, {BaseURL: srv.URL, APIKey: secretKey, Token: secretToken}} {
			requireNoSecret(t, "fmt", fmt.Sprintf("%v %+v %#v %s", c, c, c, c))
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("client", "client", c)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("client", "client", c)
			requireNoSecret(t, "slog", buf.String())
			require.Contains(t, c.String(), srv.URL)
		}
	})
}
