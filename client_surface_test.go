// Tests of the Client's surface: Retry beside a caller's *Transport, and
// no *Response beside an error.

package neuracraft_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientRetryBesideOwnTransport checks that a Client.Retry that would
// be ignored, because HTTPClient already carries a *Transport with its own
// policy, fails every call unsent, and that a zero Retry there is fine.
func TestClientRetryBesideOwnTransport(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		retry   neuracraft.RetryPolicy
		wantErr bool
	}{
		{name: "zero Retry", retry: neuracraft.RetryPolicy{}, wantErr: false},
		{name: "MaxAttempts", retry: neuracraft.RetryPolicy{MaxAttempts: 5}, wantErr: true},
		{name: "BaseDelay", retry: neuracraft.RetryPolicy{BaseDelay: time.Millisecond}, wantErr: true},
		{name: "ShouldRetry only", retry: neuracraft.RetryPolicy{ShouldRetry: neuracraft.DefaultShouldRetry}, wantErr: true},
		{name: "Budget only", retry: neuracraft.RetryPolicy{Budget: neuracraft.RetryBudget{MaxTokens: 4}}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := neuracrafttest.NewServer()
			t.Cleanup(srv.Close)
			tr := &neuracraft.Transport{Retry: neuracraft.RetryPolicy{MaxAttempts: 1}}
			t.Cleanup(tr.CloseIdleConnections)
			c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey,
				HTTPClient: &http.Client{Transport: tr}, Retry: tt.retry}

			for range 2 { // the first call and every later one
				resp, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
				if !tt.wantErr {
					require.NoError(t, err)
					require.NotNil(t, resp)
					continue
				}
				require.Error(t, err)
				require.Nil(t, resp)
				assert.Equal(t, "neuracraft: GET /v1/pipelines: Client.Retry cannot apply: HTTPClient's transport is "+
					"a *neuracraft.Transport, whose own Retry is used (set the policy there, or leave Client.Retry zero)",
					err.Error())
				assert.False(t, neuracraft.IsRetryable(err), "a configuration error is not transient")
			}
			want := 2
			if tt.wantErr {
				want = 0
			}
			assert.Len(t, srv.RequestsFor("GET /pipelines"), want, "requests sent")
		})
	}
}

// TestClientRetryAppliesToWrappedClient checks that Client.Retry configures
// the Transport added around a caller's client without one.
func TestClientRetryAppliesToWrappedClient(t *testing.T) {
	t.Parallel()
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey,
		HTTPClient: &http.Client{Transport: base},
		Retry:      neuracraft.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond}}

	srv.Fail("GET /pipelines", 3, neuracrafttest.Error(503, "service_unavailable", "maintenance"))
	_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	require.ErrorIs(t, err, neuracraft.ErrUnavailable)
	assert.Len(t, srv.RequestsFor("GET /pipelines"), 2, "MaxAttempts 2 of Client.Retry")
}

// TestClientDoNoResponseBesideError checks that Do returns a *Response
// exactly when it returns no error, also when a success's body or
// headers cannot be used.
func TestClientDoNoResponseBesideError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "req_surface")
		switch r.URL.Path {
		case "/v1/ok":
			_, _ = w.Write([]byte(`{"id":"pipe_1"}`))
		case "/v1/not-json":
			_, _ = w.Write([]byte(`<html>`))
		case "/v1/big":
			_, _ = w.Write([]byte(`{"id":"` + string(make([]byte, 200)) + `"}`))
		case "/v1/bad-location":
			w.Header().Set("Location", "http://[::1")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"pipe_2"}`))
		}
	}))
	t.Cleanup(srv.Close)
	c := &neuracraft.Client{BaseURL: srv.URL + "/v1", APIKey: "nc_test_key", MaxResponseBody: 100}

	for _, tt := range []struct {
		path       string
		wantErr    string // "" for success
		wantSyntax bool
	}{
		{path: "/ok"},
		{path: "/not-json", wantErr: "neuracraft: GET /v1/not-json: 200 OK: decoding the response body: ", wantSyntax: true},
		{path: "/big", wantErr: "neuracraft: GET /v1/big: 200 OK: response body larger than 100 bytes, not decoded (request req_surface)"},
		{path: "/bad-location", wantErr: "neuracraft: GET /v1/bad-location: 201 Created: invalid Location header: "},
	} {
		t.Run(tt.path, func(t *testing.T) {
			var out map[string]any
			resp, err := c.Do(t.Context(), "GET", tt.path, nil, &out)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, resp)
				assert.Equal(t, "req_surface", resp.RequestID)
				return
			}
			require.Error(t, err)
			assert.Nil(t, resp, "no *Response beside an error")
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "(request req_surface)")
			var syntaxErr *json.SyntaxError
			assert.Equal(t, tt.wantSyntax, errors.As(err, &syntaxErr), "%v", err)
		})
	}
}
