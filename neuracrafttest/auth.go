// This file holds credential and scope checks.

package neuracrafttest

import (
	"net/http"
	"strings"
)

// A scopeSet is the set of scopes a credential holds.
type scopeSet map[string]bool

func newScopeSet(scopes []string) scopeSet {
	ss := make(scopeSet, len(scopes))
	for _, sc := range scopes {
		ss[sc] = true
	}
	return ss
}

// allows reports whether the set grants scope. The empty scope is always
// granted, and "admin:all" grants every scope.
func (ss scopeSet) allows(scope string) bool {
	return scope == "" || ss[scopeAdmin] || ss[scope]
}

// authorize checks the request's credential against the scope route needs
// and answers the request itself when the check fails. It reports whether
// the request may proceed. Messages never repeat the credential.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, route string) bool {
	var (
		scopes  scopeSet
		known   bool
		bearer  bool
		expired bool
	)
	s.mu.Lock()
	if key := r.Header.Get("X-API-Key"); key != "" {
		scopes, known = s.keys[key]
	} else if token, ok := bearerToken(r.Header.Get("Authorization")); ok {
		bearer = true
		var t issuedToken
		t, known = s.tokens[token]
		scopes, expired = t.scopes, known && t.expired(s.now())
	}
	s.mu.Unlock()

	switch {
	case expired:
		w.Header().Set("WWW-Authenticate", `Bearer realm="neuracraft", error="invalid_token", error_description="The access token expired"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "The access token expired")
		return false
	case !known && bearer:
		w.Header().Set("WWW-Authenticate", `Bearer realm="neuracraft", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "Invalid or expired access token")
		return false
	case !known:
		w.Header().Set("WWW-Authenticate", `Bearer realm="neuracraft"`)
		writeError(w, http.StatusUnauthorized, "invalid_api_key", "Missing or invalid API key")
		return false
	}
	need := routeScopes[route]
	if !scopes.allows(need) {
		if bearer {
			w.Header().Set("WWW-Authenticate", `Bearer realm="neuracraft", error="insufficient_scope", scope="`+need+`"`)
		}
		writeError(w, http.StatusForbidden, "insufficient_scope", "The credential lacks the required scope "+need)
		return false
	}
	return true
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header value, which is empty for a bare "Bearer". The scheme is matched
// without regard to case.
func bearerToken(h string) (string, bool) {
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}
