package neuracraft

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
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
