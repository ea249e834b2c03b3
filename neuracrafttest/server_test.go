package neuracrafttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestNewServer(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", u.Hostname())
	require.Equal(t, "/v1", u.Path)
	require.Regexp(t, `^nc_test_[0-9a-f]{32}$`, srv.APIKey)
	require.NotEmpty(t, srv.Token)
	require.NotEqual(t, srv.APIKey, srv.Token)
	srv.Close()
	srv.Close() // a second Close is harmless

	_, err = http.Get(srv.URL + "/pipelines")
	require.Error(t, err, "a closed server still answers")
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.AddAPIKey("key_read", "pipeline:read")
	e.srv.AddAPIKey("key_none")
	e.srv.AddAPIKey("key_admin", "admin:all")
	e.srv.AddToken("tok_read", "pipeline:read")
	e.srv.AddToken("tok_write", "pipeline:write")

	tests := []struct {
		name     string
		method   string
		path     string
		hdr      []string
		status   int
		code     string
		wwwAuth  string
		secretIn string // a credential that must not appear in the body
	}{
		{"no credential", "GET", "/pipelines", nil, 401, "invalid_api_key", `Bearer realm="neuracraft"`, ""},
		{"empty key", "GET", "/pipelines", []string{"X-API-Key", ""}, 401, "invalid_api_key", `Bearer realm="neuracraft"`, ""},
		{"unknown key", "GET", "/pipelines", []string{"X-API-Key", "nc_live_secret"}, 401, "invalid_api_key", `Bearer realm="neuracraft"`, "nc_live_secret"},
		{"basic auth", "GET", "/pipelines", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "invalid_api_key", `Bearer realm="neuracraft"`, "dXNlcjpwYXNz"},
		{"unknown token", "GET", "/pipelines", []string{"Authorization", "Bearer tok_secret"}, 401, "invalid_token", `Bearer realm="neuracraft", error="invalid_token"`, "tok_secret"},
		{"empty token", "GET", "/pipelines", []string{"Authorization", "Bearer "}, 401, "invalid_token", `Bearer realm="neuracraft", error="invalid_token"`, ""},
		{"key lacks scope", "POST", "/pipelines", []string{"X-API-Key", "key_read"}, 403, "insufficient_scope", "", "key_read"},
		{"key with no scopes", "GET", "/pipelines", []string{"X-API-Key", "key_none"}, 403, "insufficient_scope", "", "key_none"},
		{"token lacks scope", "GET", "/pipelines", []string{"Authorization", "Bearer tok_write"}, 403, "insufficient_scope", `Bearer realm="neuracraft", error="insufficient_scope", scope="pipeline:read"`, "tok_write"},
		{"key wins over token", "GET", "/pipelines", []string{"X-API-Key", "key_none", "Authorization", "Bearer tok_read"}, 403, "insufficient_scope", "", "key_none"},
		{"unauthenticated unknown path", "GET", "/nowhere", nil, 401, "invalid_api_key", `Bearer realm="neuracraft"`, ""},
		{"key with scope", "GET", "/pipelines", []string{"X-API-Key", "key_read"}, 200, "", "", "key_read"},
		{"admin key", "POST", "/runs/run_x/cancel", []string{"X-API-Key", "key_admin"}, 404, "not_found", "", "key_admin"},
		{"token with scope", "GET", "/plugins", []string{"Authorization", "Bearer tok_read"}, 200, "", "", "tok_read"},
		{"lower-case scheme", "GET", "/plugins", []string{"Authorization", "bearer tok_read"}, 200, "", "", "tok_read"},
		{"server token", "GET", "/pipelines", []string{"Authorization", "Bearer " + e.srv.Token}, 200, "", "", e.srv.Token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, e.srv.URL+tt.path, nil)
			require.NoError(t, err)
			for i := 0; i < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			r := e.send(req)
			if tt.code == "" {
				require.Equal(t, tt.status, r.status, "body: %s", r.body)
			} else {
				requireError(t, r, tt.status, tt.code)
			}
			require.Equal(t, tt.wwwAuth, r.header.Get("WWW-Authenticate"))
			if tt.secretIn != "" {
				require.NotContains(t, string(r.body), tt.secretIn)
			}
		})
	}
}

// TestRouteScopes checks that each route needs exactly its documented
// scope.
func TestRouteScopes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	scopes := []string{"pipeline:read", "pipeline:write", "workflow:execute", "plugin:manage"}
	for _, d := range routeDefs {
		method, path, _ := strings.Cut(d.name, " ")
		path = strings.NewReplacer("{id}", "pipe_x", "{run_id}", "run_x").Replace(path)
		t.Run(d.name, func(t *testing.T) {
			var others []string
			for _, sc := range scopes {
				if sc != d.scope {
					others = append(others, sc)
				}
			}
			with, without := "key_with_"+d.scope, "key_without_"+d.scope
			e.srv.AddAPIKey(with, d.scope)
			e.srv.AddAPIKey(without, others...)

			r := e.do(method, path, nil, "X-API-Key", without)
			requireError(t, r, http.StatusForbidden, "insufficient_scope")

			r = e.do(method, path, nil, "X-API-Key", with)
			require.NotContains(t, []int{401, 403}, r.status, "body: %s", r.body)
		})
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		method string
		path   string
		status int
		code   string
		allow  string
	}{
		{"GET", "/nowhere", 404, "not_found", ""},
		{"GET", "/pipelines/", 404, "not_found", ""},
		{"GET", "/pipelines/pipe_x/runs", 404, "not_found", ""},
		{"PUT", "/pipelines", 405, "method_not_allowed", "POST, GET, HEAD"},
		{"PATCH", "/pipelines/pipe_x", 405, "method_not_allowed", "GET, HEAD, DELETE"},
		{"GET", "/pipelines/pipe_x/run", 405, "method_not_allowed", "POST"},
		{"DELETE", "/plugins", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/plugins/custom", 405, "method_not_allowed", "POST"},
		{"DELETE", "/runs/run_x", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/runs/run_x/cancel", 405, "method_not_allowed", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.do(tt.method, tt.path, nil)
			requireError(t, r, tt.status, tt.code)
			require.Equal(t, tt.allow, r.header.Get("Allow"))
		})
	}

	// Outside /v1 too.
	req, err := http.NewRequest("GET", strings.TrimSuffix(e.srv.URL, "/v1")+"/pipelines", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", e.srv.APIKey)
	requireError(t, e.send(req), 404, "not_found")
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	generated := regexp.MustCompile(`^req_[0-9a-f]{12}$`)
	tests := []struct {
		name  string
		path  string // "" means /plugins
		fault Fault  // zero: no fault
		hdr   []string
	}{
		{name: "success"},
		{name: "401", hdr: []string{"X-API-Key", "bad"}},
		{name: "404", path: "/nowhere"},
		{name: "405", path: "/plugins/custom"},
		{name: "rate limit", fault: RateLimit("1")},
		{name: "plugin", fault: Plugin(500, 8102, "PDF Export Plugin: failed", false)},
		{name: "proxy html", fault: ProxyHTML(502)},
		{name: "truncated", fault: Truncated(500)},
		{name: "slow body", fault: SlowBody(503, 100, 10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, sent := range []string{"", "client-chosen-id-42"} {
				if tt.fault.Kind() != "" {
					e.srv.Fail("GET /plugins", 1, tt.fault)
				}
				path := tt.path
				if path == "" {
					path = "/plugins"
				}
				hdr := append([]string{"X-Request-ID", sent}, tt.hdr...)
				r := e.do("GET", path, nil, hdr...)
				got := r.header.Get("X-Request-ID")
				if sent == "" {
					require.Regexp(t, generated, got)
				} else {
					require.Equal(t, sent, got)
				}
			}
		})
	}

	a := e.do("GET", "/plugins", nil).header.Get("X-Request-ID")
	b := e.do("GET", "/plugins", nil).header.Get("X-Request-ID")
	require.NotEqual(t, a, b, "generated request IDs repeat")
}

func TestFailQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(s *Server)
		reqs  []string // "METHOD /path"
		want  []int    // statuses, in order
	}{
		{
			name: "counts and order",
			setup: func(s *Server) {
				s.Fail("GET /plugins", 2, Error(500, "internal_error", "boom"))
				s.Fail("GET /plugins", 1, Error(502, "bad_gateway", "boom"))
			},
			reqs: []string{"GET /plugins", "GET /plugins", "GET /plugins", "GET /plugins"},
			want: []int{500, 500, 502, 200},
		},
		{
			name: "other routes unaffected",
			setup: func(s *Server) {
				s.Fail("GET /plugins", 1, Error(503, "service_unavailable", "down"))
			},
			reqs: []string{"GET /pipelines", "POST /runs/run_x/cancel", "GET /plugins", "GET /plugins"},
			want: []int{200, 404, 503, 200},
		},
		{
			name: "star applies to every route and to unknown paths",
			setup: func(s *Server) {
				s.Fail("*", 3, Error(503, "service_unavailable", "down"))
			},
			reqs: []string{"GET /pipelines", "GET /nowhere", "DELETE /pipelines/pipe_x", "GET /nowhere"},
			want: []int{503, 503, 503, 404},
		},
		{
			name: "earliest Fail call wins between route and star",
			setup: func(s *Server) {
				s.Fail("*", 1, Error(500, "internal_error", "first"))
				s.Fail("GET /plugins", 1, Error(502, "bad_gateway", "second"))
				s.Fail("*", 1, Error(503, "service_unavailable", "third"))
			},
			reqs: []string{"GET /plugins", "GET /plugins", "GET /plugins", "GET /plugins"},
			want: []int{500, 502, 503, 200},
		},
		{
			name: "star queued after a route fault does not jump it",
			setup: func(s *Server) {
				s.Fail("GET /plugins", 1, Error(502, "bad_gateway", "route"))
				s.Fail("*", 1, Error(503, "service_unavailable", "star"))
			},
			reqs: []string{"GET /pipelines", "GET /plugins", "GET /plugins"},
			want: []int{503, 502, 200},
		},
		{
			name:  "zero count does nothing",
			setup: func(s *Server) { s.Fail("GET /plugins", 0, Error(500, "x", "y")) },
			reqs:  []string{"GET /plugins"},
			want:  []int{200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(e.srv)
			var got []int
			for _, rq := range tt.reqs {
				method, path, _ := strings.Cut(rq, " ")
				got = append(got, e.do(method, path, nil).status)
			}
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestFailPanics(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	defer srv.Close()
	tests := []struct {
		name string
		call func()
	}{
		{"unknown route", func() { srv.Fail("GET /pipelines/{pipeline_id}", 1, RateLimit("")) }},
		{"route with /v1", func() { srv.Fail("GET /v1/pipelines", 1, RateLimit("")) }},
		{"negative count", func() { srv.Fail("*", -1, RateLimit("")) }},
		{"zero Fault", func() { srv.Fail("*", 1, Fault{}) }},
		{"empty API key", func() { srv.AddAPIKey("") }},
		{"empty token", func() { srv.AddToken("") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Panics(t, tt.call)
		})
	}
}

func TestFaultSkipsAuthAndState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.Fail("POST /pipelines", 1, Error(500, "internal_error", "boom"))
	e.srv.Fail("POST /pipelines", 1, RateLimit("3"))

	// No credential: the fault still answers, before auth.
	req, err := http.NewRequest("POST", e.srv.URL+"/pipelines", strings.NewReader(`{"name":"a"}`))
	require.NoError(t, err)
	requireError(t, e.send(req), 500, "internal_error")

	// A valid request answered by a fault creates nothing.
	r := e.do("POST", "/pipelines", strings.NewReader(`{"name":"a"}`))
	requireError(t, r, 429, "rate_limit_exceeded")
	list := decode(t, e.do("GET", "/pipelines", nil).body)
	require.Equal(t, float64(0), list["total"])

	// A faulted run read does not advance the run.
	pid := decode(t, e.do("POST", "/pipelines", strings.NewReader(`{"name":"a"}`)).body)["id"].(string)
	rid := decode(t, e.do("POST", "/pipelines/"+pid+"/run", nil).body)["run_id"].(string)
	e.srv.Fail("GET /runs/{run_id}", 2, Error(503, "service_unavailable", "down"))
	for range 2 {
		requireError(t, e.do("GET", "/runs/"+rid, nil), 503, "service_unavailable")
	}
	require.Equal(t, "queued", decode(t, e.do("GET", "/runs/"+rid, nil).body)["status"])
}

func TestRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.Fail("GET /pipelines/{id}", 1, ProxyHTML(502))

	e.do("POST", "/pipelines?dry=1", strings.NewReader(`{"name":"etl"}`), "Content-Type", "application/json")
	e.do("GET", "/pipelines/pipe_1", nil, "X-Request-ID", "mine")
	e.do("GET", "/pipelines?limit=5&offset=2&offset=3", nil)
	e.do("PUT", "/nowhere", strings.NewReader("xyz"))

	got := e.srv.Requests()
	require.Len(t, got, 4)
	for _, r := range got {
		require.Equal(t, e.srv.APIKey, r.Header.Get("X-API-Key"))
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())
	want := []Request{
		{Route: "POST /pipelines", Method: "POST", Path: "/v1/pipelines", Query: url.Values{"dry": {"1"}}, Body: []byte(`{"name":"etl"}`), BodySize: 14},
		{Route: "GET /pipelines/{id}", Method: "GET", Path: "/v1/pipelines/pipe_1", Query: url.Values{}, Body: nil, Fault: "proxy_html"},
		{Route: "GET /pipelines", Method: "GET", Path: "/v1/pipelines", Query: url.Values{"limit": {"5"}, "offset": {"2", "3"}}},
		{Route: "", Method: "PUT", Path: "/v1/nowhere", Query: url.Values{}},
	}
	require.Empty(t, cmp.Diff(want, got, ignore, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })))
	require.Equal(t, "mine", got[1].Header.Get("X-Request-ID"))

	// RequestsFor filters by route; "" selects unmatched requests.
	require.Len(t, e.srv.RequestsFor("GET /pipelines/{id}"), 1)
	require.Len(t, e.srv.RequestsFor("GET /pipelines"), 1)
	require.Equal(t, "/v1/nowhere", e.srv.RequestsFor("")[0].Path)
	require.Empty(t, e.srv.RequestsFor("DELETE /pipelines/{id}"))

	// Returned requests are copies.
	got[0].Body[0] = 'X'
	got[0].Header.Set("X-API-Key", "changed")
	got[0].Query.Set("dry", "0")
	again := e.srv.Requests()[0]
	require.Equal(t, `{"name":"etl"}`, string(again.Body))
	require.Equal(t, e.srv.APIKey, again.Header.Get("X-API-Key"))
	require.Equal(t, "1", again.Query.Get("dry"))

	e.srv.ResetRequests()
	require.Empty(t, e.srv.Requests())
	e.do("GET", "/plugins", nil)
	require.Len(t, e.srv.Requests(), 1)
}

func TestRequestBodyLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const hundredMiB = 100 << 20

	// A faulted request's body is drained and counted, and only 64 KiB kept.
	e.srv.Fail("POST /plugins/custom", 1, Error(503, "service_unavailable", "down"))
	r := e.do("POST", "/plugins/custom", io.LimitReader(zeros{}, hundredMiB))
	require.Equal(t, 503, r.status)
	got := e.srv.RequestsFor("POST /plugins/custom")
	require.Len(t, got, 1)
	require.Equal(t, int64(hundredMiB), got[0].BodySize)
	require.Len(t, got[0].Body, 64<<10)

	// A JSON route refuses a body over 1 MiB and stops reading it.
	e.srv.ResetRequests()
	r = e.do("POST", "/pipelines", io.LimitReader(zeros{}, 2<<20))
	requireError(t, r, http.StatusRequestEntityTooLarge, "request_too_large")
	got = e.srv.Requests()
	require.Len(t, got, 1)
	require.Greater(t, got[0].BodySize, int64(1<<20))
	require.Less(t, got[0].BodySize, int64(2<<20))
	require.Len(t, got[0].Body, 64<<10)
}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const workers = 24
	e.srv.Fail("GET /plugins", 10, Error(503, "service_unavailable", "down"))

	// call sends a request with the server's key and decodes a JSON answer
	// into out; it must not fail the test, since it runs in goroutines.
	call := func(method, path, body string, wantStatus int, out any) error {
		req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("X-API-Key", e.srv.APIKey)
		resp, err := e.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if wantStatus != 0 && resp.StatusCode != wantStatus {
			return fmt.Errorf("%s %s: status %d, want %d", method, path, resp.StatusCode, wantStatus)
		}
		if out == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	worker := func(i int) (pluginStatus int, err error) {
		name := fmt.Sprintf("p%d", i)
		var p struct{ ID, Name string }
		if err := call("POST", "/pipelines", `{"name":"`+name+`"}`, 201, &p); err != nil {
			return 0, err
		}
		if err := call("GET", "/pipelines/"+p.ID, "", 200, &p); err != nil || p.Name != name {
			return 0, fmt.Errorf("get %s: name %q, err %v", p.ID, p.Name, err)
		}
		var run struct {
			RunID  string `json:"run_id"`
			Status string
		}
		if err := call("POST", "/pipelines/"+p.ID+"/run", "", 202, &run); err != nil {
			return 0, err
		}
		for _, want := range []string{"queued", "running", "completed"} {
			if err := call("GET", "/runs/"+run.RunID, "", 200, &run); err != nil || run.Status != want {
				return 0, fmt.Errorf("run %s: status %q, want %q, err %v", run.RunID, run.Status, want, err)
			}
		}
		if err := call("GET", "/pipelines?limit=100", "", 200, nil); err != nil {
			return 0, err
		}
		if err := call("DELETE", "/pipelines/"+p.ID, "", 200, nil); err != nil {
			return 0, err
		}
		var env map[string]any
		req, _ := http.NewRequest("GET", e.srv.URL+"/plugins", nil)
		req.Header.Set("X-API-Key", e.srv.APIKey)
		resp, err := e.hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(&env)
	}

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		errs     []error
	)
	for i := range workers {
		wg.Go(func() {
			st, err := worker(i)
			mu.Lock()
			defer mu.Unlock()
			statuses[st]++
			if err != nil {
				errs = append(errs, err)
			}
		})
		wg.Go(func() {
			e.srv.AddAPIKey(fmt.Sprintf("k%d", i), "pipeline:read")
			e.srv.AddToken(fmt.Sprintf("t%d", i), "pipeline:read")
			e.srv.Fail("DELETE /pipelines/{id}", 0, RateLimit(""))
			_ = e.srv.Requests()
			_ = e.srv.RequestsFor("GET /plugins")
		})
	}
	wg.Wait()

	require.Empty(t, errs)
	require.Empty(t, cmp.Diff(map[int]int{200: workers - 10, 503: 10}, statuses))
	require.Len(t, e.srv.Requests(), workers*9)
	require.Equal(t, float64(0), decode(t, e.do("GET", "/pipelines", nil).body)["total"])
}
