// This file holds the Server type: its lifecycle, credentials, fault queue
// and the entry point that every request passes through.

package neuracrafttest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Scopes a credential can hold. scopeAdmin grants every other scope.
const (
	scopePipelineRead    = "pipeline:read"
	scopePipelineWrite   = "pipeline:write"
	scopeWorkflowExecute = "workflow:execute"
	scopePluginManage    = "plugin:manage"
	scopeAdmin           = "admin:all"
)

// allScopes are the scopes of [Server.APIKey] and [Server.Token].
var allScopes = []string{scopePipelineRead, scopePipelineWrite, scopeWorkflowExecute, scopePluginManage, scopeAdmin}

// A Server is a fake NeuraCraft API listening on a loopback address, for use
// in tests. Create one with [NewServer] and release it with [Server.Close].
//
// The server serves these routes, relative to [Server.URL] (the names are
// also the route patterns that [Server.Fail] and [Server.RequestsFor] take):
//
//	POST   /pipelines             201, needs "pipeline:write"
//	GET    /pipelines             200, needs "pipeline:read"; query limit (default 20) and offset
//	GET    /pipelines/{id}        200, needs "pipeline:read"
//	DELETE /pipelines/{id}        200, needs "pipeline:write"
//	GET    /plugins               200, needs "pipeline:read"
//	POST   /plugins/custom        200, needs "plugin:manage"; multipart/form-data with a "file" part
//	POST   /pipelines/{id}/run    202, needs "workflow:execute"
//	GET    /runs/{run_id}         200, needs "pipeline:read"
//	POST   /runs/{run_id}/cancel  200, needs "workflow:execute"
//
// and, at the host's root ([Server.TokenURL]), the OAuth 2.0 token
// endpoint of the client-credentials grant:
//
//	POST   /oauth/token           200, {"access_token", "token_type", "expires_in", "scope"}
//
// GET /pipelines lists pipelines in creation order; a limit above 100 is
// treated as 100, and a limit below 1, a negative offset or a value that is
// not an integer is answered 400 "invalid_request". A run is read back as
// {"id", "pipeline_id", "status", "output", "error", "started_at",
// "completed_at"}; by default it reads "queued" at its first GET, "running"
// at its second and "completed", with an output, from its third.
// [Server.ScriptRuns] changes that: more polls, a Retry-After on them, and
// an end "completed", "failed" (with a plugin or string code) or
// "cancelled" (see [RunScript]). Canceling a run that has not ended
// answers {"status": "cancellation_requested"}, and the run reads
// "cancelled" from then on; canceling an ended run leaves it as it
// ended.
//
// Every request must carry a known credential, as X-API-Key or as
// "Authorization: Bearer"; when both are sent, X-API-Key is the one checked.
// A missing or unknown API key is answered 401 "invalid_api_key", an unknown
// token 401 "invalid_token", and a known credential without the route's scope
// 403 "insufficient_scope". The scope "admin:all" grants every scope.
// Credentials are checked before routing, so an unknown path is answered 401
// to an unauthenticated client and 404 "not_found" to an authenticated one; a
// known path with the wrong method is answered 405 "method_not_allowed".
//
// Failures use the API's envelope {"error":{"code":...,"message":...}} with
// Content-Type application/json. Every response, including faults other than
// [ResetConnection], carries X-Request-ID: the request's own when it sent
// one, else a fresh "req_" followed by 12 hex digits.
//
// JSON request bodies are limited to 1 MiB and plugin uploads to 256 MiB;
// larger bodies are answered 413 "request_too_large".
//
// A Server's state (pipelines, runs, installed plugins, credentials, pending
// faults, recorded requests) lives in memory and is lost on Close. Its
// methods are safe for concurrent use by multiple goroutines.
type Server struct {
	// URL is the base URL of the API, ending in "/v1", for example
	// "http://127.0.0.1:41234/v1". Do not modify it.
	URL string

	// APIKey is an API key, sent as X-API-Key, that holds every scope.
	APIKey string

	// Token is an OAuth bearer token, sent as "Authorization: Bearer
	// <Token>", that holds every scope and never expires.
	Token string

	// TokenURL is the OAuth 2.0 token endpoint, at the host's root as on
	// the real API: for example "http://127.0.0.1:41234/oauth/token".
	TokenURL string

	// ClientID and ClientSecret are an OAuth 2.0 client registered with
	// every scope, for the client-credentials grant at TokenURL.
	ClientID     string
	ClientSecret string

	ts        *httptest.Server
	mux       *http.ServeMux
	patterns  map[string]string // ServeMux pattern -> route name, real routes only
	closing   chan struct{}     // closed by Close to release stalled and slow responses
	closeOnce sync.Once

	mu        sync.Mutex // guards everything below; never held across I/O
	keys      map[string]scopeSet
	tokens    map[string]issuedToken
	clients   map[string]oauthClient // client ID -> client
	lifetime  time.Duration          // of the tokens TokenURL issues
	now       func() time.Time       // the clock of token expiry; tests set it
	faults    []pendingFault
	requests  []Request
	pipelines map[string]*pipeline
	order     []string // pipeline IDs in creation order
	runs      map[string]*run
	installed []plugin // custom plugins, in installation order

	// runScripts maps a pipeline ID, or "*", to the script of its new
	// runs (see ScriptRuns). Guarded by mu.
	runScripts map[string]RunScript
}

// pendingFault is a fault queued by Fail that still has uses left.
type pendingFault struct {
	route string // route name or "*"
	fault Fault
	left  int
}

// NewServer starts a Server on 127.0.0.1 with a random port, over plain
// HTTP/1.1, and returns it. It holds one API key and one token,
// [Server.APIKey] and [Server.Token], and one OAuth client,
// [Server.ClientID], each with every scope, and no pipelines. The caller
// must call [Server.Close] when done with it.
func NewServer() *Server { return newServer(false) }

// NewTLSServer is [NewServer] over HTTPS, with HTTP/2 enabled, as the real
// API is served. Its certificate is trusted by the client that
// [Server.Client] returns, which speaks HTTP/2 to it (and by no other).
func NewTLSServer() *Server { return newServer(true) }

func newServer(useTLS bool) *Server {
	s := &Server{
		APIKey:       "nc_test_" + randomHex(16),
		Token:        "nc_oauth_" + randomHex(16),
		ClientID:     "nc_client_" + randomHex(8),
		ClientSecret: "nc_client_secret_" + randomHex(16),
		closing:      make(chan struct{}),
		keys:         make(map[string]scopeSet),
		tokens:       make(map[string]issuedToken),
		clients:      make(map[string]oauthClient),
		lifetime:     DefaultTokenLifetime,
		now:          time.Now,
		pipelines:    make(map[string]*pipeline),
		runs:         make(map[string]*run),
	}
	s.keys[s.APIKey] = newScopeSet(allScopes)
	s.tokens[s.Token] = issuedToken{scopes: newScopeSet(allScopes)}
	s.clients[s.ClientID] = oauthClient{secret: s.ClientSecret, scopes: newScopeSet(allScopes)}
	s.mux, s.patterns = s.newMux()
	s.addOAuthRoutes()
	if useTLS {
		s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
		s.ts.EnableHTTP2 = true
		s.ts.StartTLS()
	} else {
		s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	}
	s.URL = s.ts.URL + "/v1"
	s.TokenURL = s.ts.URL + tokenPath
	return s
}

// Client returns an *http.Client for the server, like
// httptest.Server.Client: for a [NewTLSServer] it trusts the server's
// certificate and speaks HTTP/2. It is a plain client, with no NeuraCraft
// transport; wrap it with neuracraft.WrapClient. Close closes its idle
// connections.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close shuts the server down and blocks until every request it was handling
// has returned. It first closes every client connection and cuts short the
// responses of [Stall] and [SlowBody] faults, so it returns promptly, and
// their clients see an error rather than a complete body. Close may be
// called more than once.
func (s *Server) Close() {
	s.ts.CloseClientConnections()
	s.closeOnce.Do(func() { close(s.closing) })
	s.ts.Close()
}

// AddAPIKey makes key a valid API key, sent as X-API-Key, holding the given
// scopes, and replaces the scopes of a key that is already valid. A key with
// no scopes authenticates but is refused by every route with 403. AddAPIKey
// panics if key is empty.
func (s *Server) AddAPIKey(key string, scopes ...string) {
	if key == "" {
		panic("neuracrafttest: AddAPIKey with empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = newScopeSet(scopes)
}

// AddToken makes token a valid OAuth bearer token, sent as "Authorization:
// Bearer <token>", holding the given scopes, and replaces the scopes of a
// token that is already valid. A token with no scopes authenticates but is
// refused by every route with 403. AddToken panics if token is empty.
func (s *Server) AddToken(token string, scopes ...string) {
	if token == "" {
		panic("neuracrafttest: AddToken with empty token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = issuedToken{scopes: newScopeSet(scopes)}
}

// Fail makes the next n requests that match route be answered with the fault
// f instead of being served. Route is one of the route patterns listed on
// [Server], such as "GET /pipelines/{id}", or "*" for every request,
// including requests that match no route.
//
// Faults are queued: each Fail call adds n uses of f behind those of earlier
// calls, and a request takes the earliest queued fault that applies to it,
// whether it was queued for its route or for "*". A request answered by a
// fault is recorded (with [Request.Fault] set) but not processed: its
// credentials are not checked and it changes no state. Its body is read and
// discarded before the fault is answered.
//
// Fail does nothing when n is 0. It panics if n is negative, if route is
// neither "*" nor a known route, or if f is the zero Fault.
func (s *Server) Fail(route string, n int, f Fault) {
	if route != "*" && !s.isRoute(route) {
		panic(fmt.Sprintf("neuracrafttest: Fail: unknown route %q", route))
	}
	if n < 0 {
		panic(fmt.Sprintf("neuracrafttest: Fail: negative count %d", n))
	}
	if f.kind == "" {
		panic("neuracrafttest: Fail: zero Fault")
	}
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, pendingFault{route: route, fault: f, left: n})
}

// isRoute reports whether name is one of the served routes.
func (s *Server) isRoute(name string) bool {
	for _, r := range s.patterns {
		if r == name {
			return true
		}
	}
	return false
}

// takeFault removes one use of the earliest queued fault for route and
// returns it.
func (s *Server) takeFault(route string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		p := &s.faults[i]
		if p.route != "*" && (route == "" || p.route != route) {
			continue
		}
		f := p.fault
		p.left--
		if p.left == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f, true
	}
	return Fault{}, false
}

// serveHTTP is the handler behind the httptest server. It assigns the request
// ID, matches the route, answers a queued fault or checks credentials, and
// dispatches to the route's handler. The request is recorded when the
// answer starts, after the handler has read the body it needs.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get("X-Request-ID")
	if reqID == "" {
		reqID = "req_" + randomHex(6)
	}
	w.Header().Set("X-Request-ID", reqID)

	_, pattern := s.mux.Handler(r)
	route := s.patterns[pattern]
	body := &bodyRecorder{rc: r.Body}
	r.Body = body
	rec := Request{
		Route:  route,
		Method: r.Method,
		Path:   r.URL.Path,
		Query:  r.URL.Query(),
		Header: r.Header.Clone(),
	}

	if f, ok := s.takeFault(route); ok {
		body.drain()
		rec.Fault = f.kind
		s.record(rec, body)
		s.serveFault(w, r, f)
		return
	}

	rw := &recordingWriter{ResponseWriter: w, commit: func() { s.record(rec, body) }}
	defer rw.commitOnce()
	if r.URL.Path != tokenPath && !s.authorize(rw, r, route) { // the token endpoint authenticates clients itself
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// randomHex returns 2*n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b)
}
