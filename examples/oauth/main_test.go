package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Regexp(t, regexp.MustCompile(`^GET /pipelines: 200 OK over HTTP/2.0
GET /pipelines after an HTTP/2 stream reset: 200 OK, 3 requests received
POST /pipelines: forbidden, reason insufficient_scope
level=ERROR msg="create pipeline failed" err.status=403 err.code=403 err.reason=insufficient_scope err.message="The credential lacks the required scope pipeline:write" err.request_id=[0-9a-f]{32} err.attempts=1 err.method=POST err.url=https://127.0.0.1:[0-9]+/v1/pipelines
with a wrong secret: token endpoint says invalid_client \(retryable: false\)
$`), out.String())
	assert.NotContains(t, out.String(), "nc_client_secret_")
	assert.NotContains(t, out.String(), "nc_oauth_")
}

// TestTokenStaysAtItsOrigin sends a GET that is redirected to another
// origin (another port of the same host): the bearer token that oauth2's
// transport adds must never reach it, with the example's client; without
// its CheckRedirect (WrapClient alone), it does, which is why the example
// has one.
func TestTokenStaysAtItsOrigin(t *testing.T) {
	srv := neuracrafttest.NewTLSServer()
	defer srv.Close()
	var (
		mu   sync.Mutex
		seen []string // the Authorization headers the other origin received
	)
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Get("Authorization"))
	}))
	defer other.Close()
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.True(t, strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "), "the first request carries the token")
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer redirect.Close()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client()) // trusts every httptest server
	cfg := clientcredentials.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, TokenURL: srv.TokenURL,
		Scopes: []string{"pipeline:read"}}

	resp, err := send(ctx, newClient(ctx, cfg), "GET", redirect.URL+"/pipelines", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusFound, resp.StatusCode, "the redirect's answer comes back")
	assert.Empty(t, received(), "the other origin was not called")

	_, err = send(ctx, neuracraft.WrapClient(cfg.Client(ctx)), "GET", redirect.URL+"/pipelines", "")
	require.NoError(t, err)
	got := received()
	require.Len(t, got, 1)
	assert.NotEmpty(t, got[0], "without the example's CheckRedirect, oauth2's transport adds the token to the redirected request")
}

// TestEchoedTokenIsHidden: the token oauth2's transport adds below the
// Transport (the example's client) is hidden from the error and its log
// line when a server echoes it, as a credential the request carried is.
func TestEchoedTokenIsHidden(t *testing.T) {
	srv := neuracrafttest.NewTLSServer()
	defer srv.Close()
	var (
		mu    sync.Mutex
		token string
	)
	echo := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":{"code":"invalid_token","message":"The token %s is not valid here"}}`, r.Header.Get("Authorization"))
	}))
	defer echo.Close()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
	cfg := clientcredentials.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, TokenURL: srv.TokenURL,
		Scopes: []string{"pipeline:read"}}

	_, err := send(ctx, newClient(ctx, cfg), "GET", echo.URL+"/v1/pipelines", "")
	require.ErrorIs(t, err, neuracraft.ErrUnauthorized)
	mu.Lock()
	tok := token
	mu.Unlock()
	require.NotEmpty(t, tok, "the server saw the token")
	var log bytes.Buffer
	slog.New(slog.NewTextHandler(&log, nil)).Error("list pipelines failed", "err", neuracraft.LogValue(err))
	assert.NotContains(t, err.Error(), tok, "the error")
	assert.NotContains(t, log.String(), tok, "the log line")
	assert.Contains(t, log.String(), "[REDACTED]")
}
