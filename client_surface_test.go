// Tests of the Client's surface: no *Response beside an error.

package neuracraft_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/neuracraft/neuracraft-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
