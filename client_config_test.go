// Tests of Client's configuration: the environment, a caller's own
// *http.Client and the retry policy.

package neuracraft_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientEnvironment checks that empty fields come from the
// environment, and that set fields win over it.
func TestClientEnvironment(t *testing.T) {
	t.Run("base URL and key from the environment", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		t.Setenv(neuracraft.EnvBaseURL, srv.URL)
		t.Setenv(neuracraft.EnvAPIKey, srv.APIKey)

		var c neuracraft.Client
		require.Equal(t, fmt.Sprintf("neuracraft.Client{BaseURL: %q, credentials: API key}", srv.URL), c.String())
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.NoError(t, err)
		reqs := srv.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "/v1/pipelines", reqs[0].Path)
		require.Equal(t, srv.APIKey, reqs[0].Header.Get("X-API-Key"))
	})

	t.Run("fields win over the environment", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		t.Setenv(neuracraft.EnvBaseURL, "http://127.0.0.1:1/v1")
		t.Setenv(neuracraft.EnvAPIKey, "nc_env_key")

		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.NoError(t, err)
		reqs := srv.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, srv.APIKey, reqs[0].Header.Get("X-API-Key"))
	})

	t.Run("DefaultBaseURL when both are empty", func(t *testing.T) {
		t.Setenv(neuracraft.EnvBaseURL, "")
		t.Setenv(neuracraft.EnvAPIKey, "")
		var sent []string
		c := &neuracraft.Client{HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = append(sent, r.URL.String())
			return nil, errNoNetwork
		})}}
		require.Equal(t, `neuracraft.Client{BaseURL: "https://api.neuracraft.com/v1", credentials: none}`, c.String())
		_, err := c.Do(t.Context(), "GET", "/pipelines?limit=1", nil, nil)
		require.ErrorIs(t, err, errNoNetwork)
		require.Equal(t, []string{neuracraft.DefaultBaseURL + "/pipelines?limit=1"}, sent)
	})

	t.Run("String with a token", func(t *testing.T) {
		c := &neuracraft.Client{BaseURL: "https://nc.example.com/api/v1", Token: secretToken}
		require.Equal(t, `neuracraft.Client{BaseURL: "https://nc.example.com/api/v1", credentials: bearer token}`, c.String())
	})
}

// TestClientUsesOwnHTTPClient checks that a caller's *http.Client sends
// the requests, keeps its settings, and is not modified.
func TestClientUsesOwnHTTPClient(t *testing.T) {
	t.Run("plain http.Client is wrapped, not modified", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		var used atomic.Int32
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			used.Add(1)
			return base.RoundTrip(r)
		})
		hc := &http.Client{Transport: rt, Timeout: 300 * time.Millisecond}
		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: hc}

		// A Transport wraps the caller's: it adds the X-Request-ID and
		// counts the attempts, and sends them through the caller's.
		srv.Fail("GET /pipelines", 1, neuracrafttest.Error(404, "not_found", "no such thing"))
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.Equal(t, 1, requireAPIError(t, err).Attempts, "Attempts is set by a Transport only")
		requireOneRequestID(t, srv.RequestsFor("GET /pipelines"))
		require.Equal(t, int32(1), used.Load(), "the attempt goes through the caller's transport")

		// The caller's Timeout applies: a stalled body ends the call, whose
		// context has no deadline of its own.
		srv.Fail("GET /pipelines", 1, neuracrafttest.Stall(200))
		_, err = c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Contains(t, err.Error(), "reading the response body")

		_, isRT := hc.Transport.(roundTripFunc)
		require.True(t, isRT, "the caller's client keeps its transport, got %T", hc.Transport)
		require.Equal(t, 300*time.Millisecond, hc.Timeout)
	})

	t.Run("client with a *Transport is used as is", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		tr := &neuracraft.Transport{Retry: neuracraft.RetryPolicy{MaxAttempts: 1}}
		hc := &http.Client{Transport: tr}
		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: hc}

		srv.Fail("GET /pipelines", 1, neuracrafttest.Error(503, "service_unavailable", "maintenance"))
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.ErrorIs(t, err, neuracraft.ErrUnavailable)
		require.Len(t, srv.RequestsFor("GET /pipelines"), 1)
		require.Same(t, tr, hc.Transport)
	})
}

// TestClientRetryPolicy checks that a Client's retry policy is the one of
// its HTTPClient's Transport.
func TestClientRetryPolicy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		maxAttempts  int
		wantAttempts int
		wantErr      bool
	}{
		{maxAttempts: 1, wantAttempts: 1, wantErr: true},
		{maxAttempts: 2, wantAttempts: 2, wantErr: true},
		{maxAttempts: 3, wantAttempts: 3, wantErr: false},
	} {
		t.Run("MaxAttempts "+strconv.Itoa(tt.maxAttempts), func(t *testing.T) {
			srv, c := newServer(t)
			c.HTTPClient = retrying(nil, neuracraft.RetryPolicy{MaxAttempts: tt.maxAttempts, BaseDelay: time.Millisecond})
			srv.Fail("GET /pipelines", 2, neuracrafttest.Error(500, "internal_error", "boom"))
			_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			if tt.wantErr {
				require.ErrorIs(t, err, neuracraft.ErrInternal)
				require.Equal(t, tt.wantAttempts, requireAPIError(t, err).Attempts)
			} else {
				require.NoError(t, err)
			}
			require.Len(t, srv.RequestsFor("GET /pipelines"), tt.wantAttempts)
		})
	}
}
