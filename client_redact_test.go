package neuracraft

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// TestRedactURLSecretNames: the names a security reviewer expects are
// redacted, in any case, and a JWT is redacted whatever its name; other
// values stay readable.
func TestRedactURLSecretNames(t *testing.T) {
	t.Parallel()
	secret := []string{
		"api_key", "apikey", "X-API-Key", "token", "access_token", "refresh_token", "id_token",
		"X-Amz-Security-Token", "client_secret", "password", "passwd", "pwd", "sig", "signature",
		"X-Amz-Signature", "X-Amz-Credential", "auth", "authorization", "session", "sessionid",
		"cookie", "jwt", "code", "code_verifier", "assertion", "client_assertion", "hmac", "otp",
		"totp", "nonce", "state", "SAMLResponse", "ticket", "csrf_token", "_xsrf", "private_key", "bearer",
	}
	for _, name := range secret {
		u := &url.URL{Scheme: "https", Host: "h", Path: "/v1", RawQuery: url.Values{name: {"S3CR3T"}, "limit": {"5"}}.Encode()}
		got := redactURL(u)
		assert.NotContains(t, got, "S3CR3T", name)
		assert.Contains(t, got, "limit=5", name)
	}
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	got := redactURL(&url.URL{Scheme: "https", Host: "h", RawQuery: "q=" + jwt + "&offset=10"})
	assert.Equal(t, "https://h?offset=10&q=REDACTED", got)
}
