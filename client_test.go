// Tests of Client against neuracrafttest, the fake NeuraCraft server: every
// row of the response-code reference (success, errors, retried codes). The
// other client_*_test.go files hold the faults, the requests sent, paths,
// configuration and credentials; cooldown_client_test.go a call held back
// by the cooldown.

package neuracraft_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientSuccessCodes covers the 2xx rows of the reference: 200 decoded
// into a struct, 201 with its Location, 202 with its task ID.
func TestClientSuccessCodes(t *testing.T) {
	t.Parallel()
	t.Run("200 OK", func(t *testing.T) {
		srv, c := newServer(t)
		want := createPipeline(t, srv, c, "nightly-etl")

		var got pipelineDoc
		resp, err := c.Do(t.Context(), http.MethodGet, "/pipelines/"+want.ID, nil, &got)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(want, got))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Nil(t, resp.Location)
		require.Empty(t, resp.TaskID)
		reqs := srv.RequestsFor("GET /pipelines/{id}")
		require.Len(t, reqs, 1)
		require.Equal(t, reqs[0].Header.Get("X-Request-ID"), resp.RequestID)
		require.Equal(t, resp.RequestID, resp.Header.Get("X-Request-ID"))
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	})

	t.Run("201 Created", func(t *testing.T) {
		srv, c := newServer(t)
		var got pipelineDoc
		resp, err := c.Do(t.Context(), http.MethodPost, "/pipelines",
			map[string]string{"name": "nightly-etl", "schedule": "0 2 * * *"}, &got)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		require.NotEmpty(t, got.ID)
		require.Equal(t, "nightly-etl", got.Name)
		require.Equal(t, "0 2 * * *", got.Schedule)
		require.NotNil(t, resp.Location)
		require.Equal(t, srv.URL+"/pipelines/"+got.ID, resp.Location.String())
		require.True(t, resp.Location.IsAbs())

		// The Location can be used as the path of the next call.
		var again pipelineDoc
		_, err = c.Do(t.Context(), http.MethodGet, resp.Location.String(), nil, &again)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(got, again))
	})

	t.Run("202 Accepted", func(t *testing.T) {
		srv, c := newServer(t)
		p := createPipeline(t, srv, c, "nightly-etl")
		var run runDoc
		resp, err := c.Do(t.Context(), http.MethodPost, "/pipelines/"+p.ID+"/run", nil, &run)
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		require.Regexp(t, `^run_[0-9a-f]{12}$`, run.RunID)
		require.Equal(t, run.RunID, resp.TaskID)
		require.Equal(t, srv.URL+"/runs/"+run.RunID, resp.MonitorURL)
		require.Equal(t, run.MonitorURL, resp.MonitorURL)
		require.Nil(t, resp.Location)

		// The monitor URL is an absolute URL under BaseURL, accepted as a path.
		var status struct {
			RunID  string `json:"id"`
			Status string `json:"status"`
		}
		resp, err = c.Do(t.Context(), http.MethodGet, resp.MonitorURL, nil, &status)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, run.RunID, status.RunID)
		require.Equal(t, "queued", status.Status)
		require.Len(t, srv.RequestsFor("GET /runs/{run_id}"), 1)
	})
}

// TestClientErrorCodes covers the 4xx rows of the reference: each comes
// back as an *APIError matching its sentinel, after exactly one attempt.
func TestClientErrorCodes(t *testing.T) {
	tests := []struct {
		name   string
		client func(srv *neuracrafttest.Server) *neuracraft.Client // nil: the server's API key
		method string
		path   string
		in     any
		route  string

		wantStatus  int
		wantIs      error
		wantReason  string
		wantMessage string
	}{
		{
			name: "400 empty name", method: "POST", path: "/pipelines", route: "POST /pipelines",
			in:         map[string]string{"name": ""},
			wantStatus: 400, wantIs: neuracraft.ErrBadRequest, wantReason: "invalid_request",
			wantMessage: `Field "name" must be a non-empty string`,
		},
		{
			name: "400 body not an object", method: "POST", path: "/pipelines", route: "POST /pipelines",
			in:         []string{"nightly-etl"},
			wantStatus: 400, wantIs: neuracraft.ErrBadRequest, wantReason: "invalid_request",
			wantMessage: "Request body must be a JSON object",
		},
		{
			name: "400 bad query", method: "GET", path: "/pipelines?limit=0", route: "GET /pipelines",
			wantStatus: 400, wantIs: neuracraft.ErrBadRequest, wantReason: "invalid_request",
			wantMessage: "Query parameter limit must be an integer of at least 1",
		},
		{
			name: "401 wrong API key", method: "GET", path: "/pipelines", route: "GET /pipelines",
			client: func(srv *neuracrafttest.Server) *neuracraft.Client {
				return &neuracraft.Client{BaseURL: srv.URL, APIKey: "nc_live_wrong"}
			},
			wantStatus: 401, wantIs: neuracraft.ErrUnauthorized, wantReason: "invalid_api_key",
			wantMessage: "Missing or invalid API key",
		},
		{
			name: "401 no credentials", method: "GET", path: "/pipelines", route: "GET /pipelines",
			client: func(srv *neuracrafttest.Server) *neuracraft.Client {
				return &neuracraft.Client{BaseURL: srv.URL}
			},
			wantStatus: 401, wantIs: neuracraft.ErrUnauthorized, wantReason: "invalid_api_key",
			wantMessage: "Missing or invalid API key",
		},
		{
			name: "401 wrong token", method: "GET", path: "/pipelines", route: "GET /pipelines",
			client: func(srv *neuracrafttest.Server) *neuracraft.Client {
				return &neuracraft.Client{BaseURL: srv.URL, Token: "nc_oauth_wrong", APIKey: srv.APIKey}
			},
			wantStatus: 401, wantIs: neuracraft.ErrUnauthorized, wantReason: "invalid_token",
			wantMessage: "Invalid or expired access token",
		},
		{
			name: "403 API key without pipeline:write", method: "POST", path: "/pipelines", route: "POST /pipelines",
			in: map[string]string{"name": "nightly-etl"},
			client: func(srv *neuracrafttest.Server) *neuracraft.Client {
				srv.AddAPIKey("nc_live_readonly", "pipeline:read")
				return &neuracraft.Client{BaseURL: srv.URL, APIKey: "nc_live_readonly"}
			},
			wantStatus: 403, wantIs: neuracraft.ErrForbidden, wantReason: "insufficient_scope",
			wantMessage: "The credential lacks the required scope pipeline:write",
		},
		{
			name: "403 token without workflow:execute", method: "POST", path: "/pipelines/pipe_1/run",
			route: "POST /pipelines/{id}/run",
			client: func(srv *neuracrafttest.Server) *neuracraft.Client {
				srv.AddToken("nc_oauth_readwrite", "pipeline:read", "pipeline:write")
				return &neuracraft.Client{BaseURL: srv.URL, Token: "nc_oauth_readwrite"}
			},
			wantStatus: 403, wantIs: neuracraft.ErrForbidden, wantReason: "insufficient_scope",
			wantMessage: "The credential lacks the required scope workflow:execute",
		},
		{
			name: "404 missing pipeline", method: "GET", path: "/pipelines/pipe_missing", route: "GET /pipelines/{id}",
			wantStatus: 404, wantIs: neuracraft.ErrNotFound, wantReason: "not_found",
			wantMessage: "Resource not found",
		},
		{
			name: "404 unknown path", method: "GET", path: "/nowhere", route: "",
			wantStatus: 404, wantIs: neuracraft.ErrNotFound, wantReason: "not_found",
			wantMessage: "Resource not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(neuracraft.EnvAPIKey, "") // "no credentials" must mean none
			srv, c := newServer(t)
			if tt.client != nil {
				c = tt.client(srv)
			}
			out := pipelineDoc{Name: "untouched"}
			resp, err := c.Do(t.Context(), tt.method, tt.path, tt.in, &out)
			require.Nil(t, resp)
			apiErr := requireAPIError(t, err)
			require.ErrorIs(t, err, tt.wantIs)
			require.ErrorIs(t, err, neuracraft.Code(tt.wantStatus))
			require.Equal(t, tt.wantStatus, apiErr.StatusCode)
			require.Equal(t, neuracraft.Code(tt.wantStatus), apiErr.Code)
			require.Equal(t, tt.wantReason, apiErr.Reason)
			require.Equal(t, tt.wantMessage, apiErr.Message)
			require.False(t, neuracraft.IsRetryable(err))
			require.Equal(t, pipelineDoc{Name: "untouched"}, out, "out must not be touched on failure")

			// One attempt, and the error names the request the server saw.
			reqs := srv.RequestsFor(tt.route)
			require.Len(t, reqs, 1)
			id := requireOneRequestID(t, reqs)
			require.Equal(t, id, apiErr.RequestID)
			require.Equal(t, id, apiErr.Header.Get("X-Request-ID"), "the server echoes the request's ID")
			require.Equal(t, 1, apiErr.Attempts)
			require.Equal(t, tt.method, apiErr.Method)
			require.Equal(t, srv.URL+tt.path, apiErr.URL)
			u, _ := url.Parse(srv.URL + tt.path)
			require.Equal(t, fmt.Sprintf("neuracraft: %s %s: %d %s: %s (request %s)", tt.method, u.Path,
				tt.wantStatus, http.StatusText(tt.wantStatus), tt.wantMessage, id), err.Error())
		})
	}
}

// TestClientRetriedCodes covers the 429, 500 and 503 rows of the
// reference: what is retried for which method, and what the server saw.
func TestClientRetriedCodes(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, srv *neuracrafttest.Server, c *neuracraft.Client) (string, any) {
		return "/pipelines/" + createPipeline(t, srv, c, "nightly-etl").ID, nil
	}
	post := func(*testing.T, *neuracrafttest.Server, *neuracraft.Client) (string, any) {
		return "/pipelines", map[string]any{"name": "nightly-etl", "steps": []string{"extract", "load"}}
	}
	tests := []struct {
		name   string
		method string
		route  string
		target func(t *testing.T, srv *neuracrafttest.Server, c *neuracraft.Client) (path string, in any)
		fault  neuracrafttest.Fault
		n      int
		policy neuracraft.RetryPolicy

		wantAttempts   int
		wantIs         error // nil: the call succeeds
		wantRetryAfter time.Duration
	}{
		{name: "429 GET retried after Retry-After", method: "GET", route: "GET /pipelines/{id}", target: get,
			fault: neuracrafttest.RateLimit("1"), n: 1, policy: fastRetry, wantAttempts: 2},
		{name: "429 GET with MaxAttempts 1", method: "GET", route: "GET /pipelines/{id}", target: get,
			fault: neuracrafttest.RateLimit("1"), n: 1, policy: neuracraft.RetryPolicy{MaxAttempts: 1},
			wantAttempts: 1, wantIs: neuracraft.ErrRateLimited, wantRetryAfter: time.Second},
		{name: "429 POST retried", method: "POST", route: "POST /pipelines", target: post,
			fault: neuracrafttest.RateLimit(""), n: 1, policy: fastRetry, wantAttempts: 2},
		{name: "500 GET retried", method: "GET", route: "GET /pipelines/{id}", target: get,
			fault: neuracrafttest.Error(500, "internal_error", "boom"), n: 2, policy: fastRetry, wantAttempts: 3},
		{name: "500 POST not retried", method: "POST", route: "POST /pipelines", target: post,
			fault: neuracrafttest.Error(500, "internal_error", "boom"), n: 1, policy: fastRetry,
			wantAttempts: 1, wantIs: neuracraft.ErrInternal},
		{name: "503 GET retried", method: "GET", route: "GET /pipelines/{id}", target: get,
			fault: neuracrafttest.Error(503, "service_unavailable", "maintenance"), n: 1, policy: fastRetry, wantAttempts: 2},
		{name: "503 POST retried", method: "POST", route: "POST /pipelines", target: post,
			fault: neuracrafttest.Error(503, "service_unavailable", "maintenance"), n: 2, policy: fastRetry, wantAttempts: 3},
		{name: "503 GET attempts exhausted", method: "GET", route: "GET /pipelines/{id}", target: get,
			fault: neuracrafttest.Error(503, "service_unavailable", "maintenance"), n: 5,
			policy:       neuracraft.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond},
			wantAttempts: 3, wantIs: neuracraft.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t)
			path, in := tt.target(t, srv, c)
			c = &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: retrying(nil, tt.policy)}
			srv.Fail(tt.route, tt.n, tt.fault)

			var out pipelineDoc
			resp, err := c.Do(t.Context(), tt.method, path, in, &out)

			reqs := srv.RequestsFor(tt.route)
			require.Len(t, reqs, tt.wantAttempts, "attempts the server received")
			id := requireOneRequestID(t, reqs)
			for i, r := range reqs {
				wantFault := tt.fault.Kind()
				if i >= tt.n {
					wantFault = ""
				}
				require.Equal(t, wantFault, r.Fault, "attempt %d", i+1)
				require.Equal(t, reqs[0].Body, r.Body, "attempt %d resends the same body", i+1)
			}
			if in != nil {
				require.JSONEq(t, `{"name":"nightly-etl","steps":["extract","load"]}`, string(reqs[0].Body))
			}

			if tt.wantIs == nil {
				require.NoError(t, err)
				require.Equal(t, id, resp.RequestID)
				require.Equal(t, "nightly-etl", out.Name)
				require.Equal(t, "", reqs[len(reqs)-1].Fault)
				if tt.method == "POST" {
					var list struct {
						Total int `json:"total"`
					}
					_, err := c.Do(t.Context(), "GET", "/pipelines", nil, &list)
					require.NoError(t, err)
					require.Equal(t, 1, list.Total, "a retried POST creates one pipeline")
				}
				return
			}
			require.Nil(t, resp)
			apiErr := requireAPIError(t, err)
			require.ErrorIs(t, err, tt.wantIs)
			require.Equal(t, tt.wantAttempts, apiErr.Attempts)
			require.Equal(t, id, apiErr.RequestID)
			require.Equal(t, tt.wantRetryAfter, apiErr.RetryAfter)
			require.True(t, neuracraft.IsRetryable(err), "%v", err)
			if tt.wantAttempts > 1 {
				require.Contains(t, err.Error(), fmt.Sprintf("%d attempts", tt.wantAttempts))
			}
		})
	}
}
