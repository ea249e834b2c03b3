// Tests of the decoding of the OAuth 2.0 error shapes (decode.go): the
// token endpoint's body (RFC 6749 section 5.2) and the Bearer challenge of
// a resource server (RFC 6750 section 3), read through FromResponse and
// through a Transport. challenge_test.go has the WWW-Authenticate parser
// itself.

package neuracraft

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oauthView is what the OAuth shapes decide in an APIError.
type oauthView struct {
	Code    Code
	Reason  string
	Message string
	Details string
}

func TestFromResponseOAuthShapes(t *testing.T) {
	t.Parallel()
	const bearer = `Bearer realm="neuracraft", error="invalid_token", error_description="The access token expired at 2025-11-26T14:02:11Z"`
	tests := []struct {
		name   string
		status int
		body   string
		kv     []string // response header
		want   oauthView
	}{
		{"token endpoint: invalid_client", 401, string(readErrorFile(t, "oauth_invalid_client.json")), []string{"Content-Type", "application/json"},
			oauthView{Code: 401, Reason: "invalid_client", Message: "Client authentication failed: unknown client_id or bad client_secret."}},
		{"token endpoint: invalid_grant with error_uri", 400, string(readErrorFile(t, "oauth_invalid_grant.json")), nil,
			oauthView{Code: 400, Reason: "invalid_grant", Message: "The refresh token has expired; refresh tokens are valid for 14 days."}},
		{"token endpoint: escapes in the description", 400, string(readErrorFile(t, "oauth_invalid_scope.json")), nil,
			oauthView{Code: 400, Reason: "invalid_scope", Message: `Unknown scope "pipeline:delete". Allowed: pipeline:read pipeline:write workflow:execute plugin:manage admin:all.`}},
		{"token endpoint: no description", 400, string(readErrorFile(t, "oauth_unsupported_grant_type.json")), nil,
			oauthView{Code: 400, Reason: "unsupported_grant_type", Message: "unsupported_grant_type"}},
		{"error is a sentence: no reason", 400, `{"error":"Invalid pipeline configuration.","error_description":"steps is empty"}`, nil,
			oauthView{Code: 400, Message: "steps is empty"}},
		{"error is a number: the message", 400, `{"error":5,"message":"m"}`, nil,
			oauthView{Code: 400, Message: "m"}},
		{"error is blank: the description", 400, `{"error":" ","error_description":"d"}`, nil,
			oauthView{Code: 400, Message: "d"}},
		{"no error: the description", 400, `{"error_description":"only a description"}`, nil,
			oauthView{Code: 400, Message: "only a description"}},
		{"control characters in the description", 401, "{\"error\":\"invalid_client\",\"error_description\":\"bad\\r\\nlevel=ERROR msg=forged\\u001b[31m\"}", nil,
			oauthView{Code: 401, Reason: "invalid_client", Message: "bad level=ERROR msg=forged[31m"}},

		{"resource server: Bearer challenge, no body", 401, "", []string{"WWW-Authenticate", bearer},
			oauthView{Code: 401, Reason: "invalid_token", Message: "The access token expired at 2025-11-26T14:02:11Z"}},
		{"Bearer challenge, HTML body", 401, "<html><body>401</body></html>", []string{"Content-Type", "text/html", "WWW-Authenticate", bearer},
			oauthView{Code: 401, Reason: "invalid_token", Message: "The access token expired at 2025-11-26T14:02:11Z"}},
		{"insufficient_scope on 403, token values", 403, "", []string{"WWW-Authenticate", `Bearer error=insufficient_scope, scope="pipeline:write"`},
			oauthView{Code: 403, Reason: "insufficient_scope", Message: "insufficient_scope"}}, // no description: the code
		{"Bearer after another challenge, on a second line", 401, "", []string{"WWW-Authenticate", `Basic realm="x", Negotiate`, "WWW-Authenticate", bearer},
			oauthView{Code: 401, Reason: "invalid_token", Message: "The access token expired at 2025-11-26T14:02:11Z"}},
		{"Bearer without error: nothing", 401, "", []string{"WWW-Authenticate", `Bearer realm="neuracraft"`},
			oauthView{Code: 401, Message: "Unauthorized"}},
		{"the body wins", 401, string(readErrorFile(t, "invalid_token.json")), []string{"WWW-Authenticate", `Bearer error="invalid_request", error_description="from the header"`},
			oauthView{Code: 401, Reason: "invalid_token", Message: "Access token expired at 2025-11-26T14:02:11Z. Request a new token from /oauth/token."}},
		{"the header fills a missing reason", 401, `{"message":"Unauthorized request."}`, []string{"WWW-Authenticate", bearer},
			oauthView{Code: 401, Reason: "invalid_token", Message: "Unauthorized request."}},
		{"control characters in the header", 401, "", []string{"WWW-Authenticate", "Bearer error=\"invalid_token\x1b[2J\", error_description=\"line one\u0085line two\u2028three\x7f\""},
			oauthView{Code: 401, Reason: "invalid_token[2J", Message: "line one line two three"}},
		{"a long description is capped", 401, "", []string{"WWW-Authenticate", `Bearer error="invalid_token", error_description="` + strings.Repeat("x", 3000) + `"`},
			oauthView{Code: 401, Reason: "invalid_token", Message: strings.Repeat("x", maxMessage-1) + "…"}},

		{"details: an array", 500, `{"error":{"code":8301,"message":"m","details":["a",1]}}`, nil,
			oauthView{Code: 8301, Message: "m", Details: `["a",1]`}},
		{"details: a string", 422, string(readErrorFile(t, "details_string.json")), nil,
			oauthView{Code: 8205, Message: "CSV Import Plugin: column mapping rejected.", Details: `"column 'amount' is mapped twice"`}},
		{"details: a number", 500, `{"error":{"code":"x","message":"m","details":42}}`, nil,
			oauthView{Code: 500, Reason: "x", Message: "m", Details: "42"}},
		{"details: false", 500, `{"error":{"code":"x","message":"m","details":false}}`, nil,
			oauthView{Code: 500, Reason: "x", Message: "m", Details: "false"}},
		{"details: null is none", 500, `{"error":{"code":"x","message":"m","details":null}}`, nil,
			oauthView{Code: 500, Reason: "x", Message: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := apiErrorFor(t, tt.status, tt.body, tt.kv...)
			got := oauthView{Code: e.Code, Reason: e.Reason, Message: e.Message, Details: string(e.Details)}
			assert.Empty(t, cmp.Diff(tt.want, got), "FromResponse (-want +got)")
			require.NoError(t, e.Err, "a well-formed body")
			checkOneLine(t, "Error()", e.Error())
		})
	}
}

// TestTransportOAuthChallenge: a 401 with only a Bearer challenge, met by a
// Transport over a custom Base, names the OAuth error and is not retried.
func TestTransportOAuthChallenge(t *testing.T) {
	t.Parallel()
	calls := 0
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		calls++
		resp := newErrorResponse(http.StatusUnauthorized, "",
			"WWW-Authenticate", `Bearer realm="neuracraft", error="invalid_token", error_description="The token was revoked"`)
		resp.Request = req
		return resp, nil
	})
	c := &http.Client{Transport: &Transport{Base: base}}
	resp, err := c.Get("https://api.neuracraft.com/v1/pipelines")
	if resp != nil {
		resp.Body.Close()
	}
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	require.ErrorIs(t, err, ErrUnauthorized)
	got := oauthView{Code: apiErr.Code, Reason: apiErr.Reason, Message: apiErr.Message}
	assert.Empty(t, cmp.Diff(oauthView{Code: 401, Reason: "invalid_token", Message: "The token was revoked"}, got), "APIError (-want +got)")
	require.Equal(t, 1, calls, "a 401 is not retried")
	require.True(t, strings.HasPrefix(apiErr.Error(), "neuracraft: GET /v1/pipelines: 401 Unauthorized: The token was revoked (request "), apiErr.Error())
}
