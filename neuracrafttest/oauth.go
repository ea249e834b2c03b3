// This file holds the OAuth 2.0 token endpoint: the client-credentials
// grant, the clients it knows and the tokens it issues.

package neuracrafttest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DefaultTokenLifetime is how long a token issued by [Server.TokenURL]
// is valid, unless [Server.SetTokenLifetime] says otherwise: one hour.
const DefaultTokenLifetime = time.Hour

// tokenPath is where the token endpoint is served, at the host's root.
const tokenPath = "/oauth/token"

// tokenRoute is the token endpoint's route name, for Fail and RequestsFor.
const tokenRoute = "POST " + tokenPath

// An issuedToken is a bearer token the server accepts.
type issuedToken struct {
	scopes  scopeSet
	expires time.Time // zero: never
}

func (t issuedToken) expired(now time.Time) bool {
	return !t.expires.IsZero() && !now.Before(t.expires)
}

// An oauthClient is a registered OAuth 2.0 client.
type oauthClient struct {
	secret string
	scopes scopeSet
}

// AddClient registers an OAuth 2.0 client, id and secret, allowed to ask
// TokenURL for the given scopes, and replaces the secret and scopes of a
// client already registered. AddClient panics if id or secret is empty.
func (s *Server) AddClient(id, secret string, scopes ...string) {
	if id == "" || secret == "" {
		panic("neuracrafttest: AddClient with empty id or secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = oauthClient{secret: secret, scopes: newScopeSet(scopes)}
}

// SetTokenLifetime sets how long the tokens that TokenURL issues from now
// on are valid (their "expires_in"). A token used after its lifetime is
// answered 401 "invalid_token". d must be positive; SetTokenLifetime
// panics otherwise.
func (s *Server) SetTokenLifetime(d time.Duration) {
	if d <= 0 {
		panic("neuracrafttest: SetTokenLifetime with a lifetime that is not positive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// addOAuthRoutes adds the token endpoint to the mux, with a 405 answer
// for its other methods.
func (s *Server) addOAuthRoutes() {
	s.mux.HandleFunc(tokenRoute, s.serveToken)
	s.patterns[tokenRoute] = tokenRoute
	s.mux.HandleFunc(tokenPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint accepts POST only")
	})
}

// serveToken serves POST /oauth/token: the client-credentials grant of RFC
// 6749 section 4.4. The client authenticates with HTTP Basic or with the
// form's client_id and client_secret (not both); scope is a space-separated
// list of scopes the client holds, and all of them when absent. Failures
// are answered in the shape of RFC 6749 section 5.2:
// {"error": "...", "error_description": "..."}.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The body must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The body is not a valid form")
		return
	}
	form := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 section 2.3.1: form-encoded before Basic's base64.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || form.Has("client_secret") {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Use one client authentication method")
			return
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Missing grant_type")
		return
	case grant != "client_credentials":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Only the client_credentials grant is supported")
		return
	}

	s.mu.Lock()
	client, ok := s.clients[id]
	now, lifetime := s.now(), s.lifetime
	s.mu.Unlock()
	if !ok || id == "" || secret != client.secret {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="neuracraft"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	scopes := strings.Fields(form.Get("scope"))
	if len(scopes) == 0 {
		for sc := range client.scopes {
			scopes = append(scopes, sc)
		}
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	for _, sc := range scopes {
		if !slices.Contains(allScopes, sc) || !client.scopes.allows(sc) {
			writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "The client may not ask for the scope "+sc)
			return
		}
	}

	token := "nc_oauth_" + randomHex(16)
	s.mu.Lock()
	s.tokens[token] = issuedToken{scopes: newScopeSet(scopes), expires: now.Add(lifetime)}
	s.mu.Unlock()
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(lifetime / time.Second),
		Scope:       strings.Join(scopes, " "),
	})
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// writeOAuthError answers with status and an RFC 6749 section 5.2 error
// body.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	b, err := json.Marshal(map[string]string{"error": code, "error_description": description})
	if err != nil {
		panic("neuracrafttest: cannot encode OAuth error: " + err.Error())
	}
	writeRawJSON(w, status, b)
}
