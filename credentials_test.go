package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
