// Tests of Client against neuracrafttest, the fake NeuraCraft server: every
// row of the response-code reference, every fault kind, what the server
// received, the Client's configuration, bad success bodies, secrets and
// concurrent use.

package neuracraft_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// clientSecretKey and clientSecretToken are credentials that must never
// show in an error or a log line.
const (
	clientSecretKey   = "nc_live_SECRET123"
	clientSecretToken = "nc_oauth_SECRET456"
)

// TestClientSuccessCodes covers the 2xx rows of the reference: 200 decoded
// into a struct, 201 with its Location, 202 with its task ID.
func TestClientSuccessCodes(t *testing.T) {
	t.Run("200 OK", func(t *testing.T) {
		srv, c := newClientServer(t)
		want := createClientPipeline(t, srv, c, "nightly-etl")

		var got clientPipeline
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
		srv, c := newClientServer(t)
		var got clientPipeline
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
		var again clientPipeline
		_, err = c.Do(t.Context(), http.MethodGet, resp.Location.String(), nil, &again)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(got, again))
	})

	t.Run("202 Accepted", func(t *testing.T) {
		srv, c := newClientServer(t)
		p := createClientPipeline(t, srv, c, "nightly-etl")
		var run clientRun
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
			srv, c := newClientServer(t)
			if tt.client != nil {
				c = tt.client(srv)
			}
			out := clientPipeline{Name: "untouched"}
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
			require.Equal(t, clientPipeline{Name: "untouched"}, out, "out must not be touched on failure")

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
	get := func(t *testing.T, srv *neuracrafttest.Server, c *neuracraft.Client) (string, any) {
		return "/pipelines/" + createClientPipeline(t, srv, c, "nightly-etl").ID, nil
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
			srv, c := newClientServer(t)
			path, in := tt.target(t, srv, c)
			c = &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, Retry: tt.policy}
			srv.Fail(tt.route, tt.n, tt.fault)

			var out clientPipeline
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

// TestClientCooldown checks that a request held back by the Transport's
// cooldown after a 429 comes out of Do as a *CooldownError, unsent.
func TestClientCooldown(t *testing.T) {
	srv, c := newClientServer(t)
	c.Retry = neuracraft.RetryPolicy{MaxAttempts: 1}
	srv.Fail("GET /pipelines", 1, neuracrafttest.RateLimit("60"))

	_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	apiErr := requireAPIError(t, err)
	require.Equal(t, 60*time.Second, apiErr.RetryAfter)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = c.Do(ctx, "GET", "/pipelines", nil, nil)
	var cooldown *neuracraft.CooldownError
	require.True(t, errors.As(err, &cooldown), "want a *CooldownError, got %T: %v", err, err)
	require.ErrorIs(t, err, neuracraft.ErrRateLimited)
	require.Equal(t, neuracraft.CodeTooManyRequests, cooldown.Cause)
	require.Regexp(t, requestIDPattern, cooldown.RequestID)
	require.True(t, strings.HasPrefix(err.Error(), "neuracraft: GET /v1/pipelines: held back"), err.Error())
	require.Len(t, srv.RequestsFor("GET /pipelines"), 1, "the held-back request is not sent")
}

// TestClientFaults drives every fault kind of neuracrafttest through the
// Client.
func TestClientFaults(t *testing.T) {
	const pluginMessage = "PDF Export Plugin: Failed to generate document due to invalid template."
	noKeepAlive := func() *http.Client {
		// A fresh transport without keep-alives: net/http's own transparent
		// retry of requests on a reused connection cannot hide a reset.
		return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	tests := []struct {
		name       string
		method     string
		route      string // also the path, with {id} and {run_id} replaced
		in         any
		fault      neuracrafttest.Fault
		n          int
		policy     neuracraft.RetryPolicy
		httpClient func() *http.Client
		timeout    time.Duration

		wantAttempts int
		check        func(t *testing.T, resp *neuracraft.Response, out map[string]any, err error)
	}{
		{
			name: "rate_limit without Retry-After, exhausted", method: "GET", route: "GET /pipelines",
			fault: neuracrafttest.RateLimit(""), n: 3,
			policy:       neuracraft.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond},
			wantAttempts: 2,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				apiErr := requireAPIError(t, err)
				require.ErrorIs(t, err, neuracraft.ErrRateLimited)
				require.Equal(t, "rate_limit_exceeded", apiErr.Reason)
				require.Zero(t, apiErr.RetryAfter)
				require.Equal(t, 2, apiErr.Attempts)
			},
		},
		{
			name: "error with a status outside the reference", method: "DELETE", route: "DELETE /pipelines/{id}",
			fault: neuracrafttest.Error(409, "conflict", "Pipeline is running"), n: 1, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				apiErr := requireAPIError(t, err)
				require.ErrorIs(t, err, neuracraft.Code(409))
				require.Equal(t, "conflict", apiErr.Reason)
				require.Equal(t, "Pipeline is running", apiErr.Message)
				require.False(t, neuracraft.IsRetryable(err))
			},
		},
		{
			name: "plugin, retryable false, GET not retried", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.Plugin(500, 8102, pluginMessage, false), n: 1, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				apiErr := requireAPIError(t, err)
				require.True(t, neuracraft.IsPlugin(err))
				require.ErrorIs(t, err, neuracraft.Code(8102))
				require.ErrorIs(t, err, neuracraft.ErrPlugin)
				require.ErrorIs(t, err, neuracraft.ErrInternal, "the HTTP status still classifies")
				require.Equal(t, 500, apiErr.StatusCode)
				require.Equal(t, neuracraft.Code(8102), apiErr.Code)
				require.Equal(t, pluginMessage, apiErr.Message)
				require.JSONEq(t, `{"plugin_id":"pdf-export","attempt":1}`, string(apiErr.Details))
				require.NotNil(t, apiErr.RetryHint)
				require.False(t, *apiErr.RetryHint)
				require.False(t, neuracraft.IsRetryable(err))
				require.Contains(t, err.Error(), "HTTP 500")
			},
		},
		{
			name: "plugin, retryable true, POST retried", method: "POST", route: "POST /pipelines/{id}/run",
			fault: neuracrafttest.Plugin(500, 8102, pluginMessage, true), n: 1, wantAttempts: 2,
			check: func(t *testing.T, resp *neuracraft.Response, out map[string]any, err error) {
				require.NoError(t, err)
				require.Equal(t, http.StatusAccepted, resp.StatusCode)
				require.Equal(t, out["run_id"], resp.TaskID)
			},
		},
		{
			name: "plugin, retryable true, MaxAttempts 1", method: "POST", route: "POST /pipelines/{id}/run",
			fault: neuracrafttest.Plugin(503, 8102, pluginMessage, true), n: 1,
			policy: neuracraft.RetryPolicy{MaxAttempts: 1}, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				apiErr := requireAPIError(t, err)
				require.True(t, neuracraft.IsPlugin(err))
				require.ErrorIs(t, err, neuracraft.Code(8102))
				require.ErrorIs(t, err, neuracraft.ErrUnavailable)
				require.NotNil(t, apiErr.RetryHint)
				require.True(t, *apiErr.RetryHint)
				require.True(t, neuracraft.IsRetryable(err))
				require.JSONEq(t, `{"plugin_id":"pdf-export","attempt":1}`, string(apiErr.Details))
			},
		},
		{
			name: "proxy_html 502, not retried for POST", method: "POST", route: "POST /pipelines",
			in:    map[string]string{"name": "nightly-etl"},
			fault: neuracrafttest.ProxyHTML(502), n: 1, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				apiErr := requireAPIError(t, err)
				require.Equal(t, 502, apiErr.StatusCode)
				require.Equal(t, neuracraft.CodeBadGateway, apiErr.Code)
				require.Equal(t, "Bad Gateway", apiErr.Message)
				require.Empty(t, apiErr.Reason)
				require.Contains(t, string(apiErr.Body), "<h1>502 Bad Gateway</h1>")
				require.Contains(t, string(apiErr.Body), "<center>nginx</center>")
				require.NotContains(t, err.Error(), "<")
				require.True(t, neuracraft.IsRetryable(err))
			},
		},
		{
			name: "proxy_html 502, GET retried", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.ProxyHTML(502), n: 1, wantAttempts: 2,
			check: func(t *testing.T, resp *neuracraft.Response, out map[string]any, err error) {
				require.NoError(t, err)
				require.Equal(t, "nightly-etl", out["name"])
			},
		},
		{
			name: "truncated success body", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.Truncated(200), n: 1, wantAttempts: 1,
			check: func(t *testing.T, resp *neuracraft.Response, _ map[string]any, err error) {
				require.Error(t, err)
				var apiErr *neuracraft.APIError
				require.False(t, errors.As(err, &apiErr), "a 200 is not an *APIError: %v", err)
				var syntaxErr *json.SyntaxError
				require.True(t, errors.As(err, &syntaxErr), "%v", err)
				require.Nil(t, resp, "no metadata beside an error")
				require.Contains(t, err.Error(), ": 200 OK: ")
				require.Contains(t, err.Error(), "(request ")
				require.Contains(t, err.Error(), "decoding the response body")
			},
		},
		{
			name: "truncated error body", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.Truncated(503), n: 1,
			policy: neuracraft.RetryPolicy{MaxAttempts: 1}, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				apiErr := requireAPIError(t, err)
				require.ErrorIs(t, err, neuracraft.ErrUnavailable)
				require.Equal(t, "Service Unavailable", apiErr.Message)
				require.Error(t, apiErr.Err, "the broken body is reported")
				require.True(t, strings.HasPrefix(string(apiErr.Body), `{"error":{`), string(apiErr.Body))
			},
		},
		{
			name: "reset_connection, GET retried", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.ResetConnection(), n: 1, httpClient: noKeepAlive, wantAttempts: 2,
			check: func(t *testing.T, resp *neuracraft.Response, out map[string]any, err error) {
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				require.Equal(t, "nightly-etl", out["name"])
			},
		},
		{
			name: "reset_connection, POST not retried", method: "POST", route: "POST /pipelines",
			in:    map[string]string{"name": "nightly-etl"},
			fault: neuracrafttest.ResetConnection(), n: 1, httpClient: noKeepAlive, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				require.Error(t, err)
				var apiErr *neuracraft.APIError
				require.False(t, errors.As(err, &apiErr), "a reset is not an *APIError: %v", err)
				require.True(t, neuracraft.IsRetryable(err), "a reset is transient: %v", err)
				require.Contains(t, err.Error(), "POST /v1/pipelines")
			},
		},
		{
			name: "slow_body delivered in full", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.SlowBody(200, 600, 64, time.Millisecond), n: 1, wantAttempts: 1,
			check: func(t *testing.T, resp *neuracraft.Response, out map[string]any, err error) {
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode)
				require.Equal(t, "600", resp.Header.Get("Content-Length"))
				require.Empty(t, cmp.Diff(map[string]any{"id": "pipe_0123456789ab", "name": "nightly-etl",
					"created_at": "2025-01-01T00:00:00Z"}, out))
			},
		},
		{
			name: "stall after a 200", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.Stall(200), n: 1, timeout: 200 * time.Millisecond, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.False(t, neuracraft.IsRetryable(err))
			},
		},
		{
			name: "stall after a 503", method: "GET", route: "GET /pipelines/{id}",
			fault: neuracrafttest.Stall(503), n: 1, timeout: 200 * time.Millisecond, wantAttempts: 1,
			check: func(t *testing.T, _ *neuracraft.Response, _ map[string]any, err error) {
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.False(t, neuracraft.IsRetryable(err))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newClientServer(t)
			p := createClientPipeline(t, srv, c, "nightly-etl")
			var run clientRun
			_, err := c.Do(t.Context(), "POST", "/pipelines/"+p.ID+"/run", nil, &run)
			require.NoError(t, err)
			srv.ResetRequests()

			if tt.policy.MaxAttempts == 0 {
				tt.policy = fastRetry
			}
			c = &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, Retry: tt.policy}
			if tt.httpClient != nil {
				c.HTTPClient = tt.httpClient()
				t.Cleanup(c.HTTPClient.CloseIdleConnections)
			}
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, path, _ := strings.Cut(tt.route, " ")
			path = strings.NewReplacer("{id}", p.ID, "{run_id}", run.RunID).Replace(path)
			srv.Fail(tt.route, tt.n, tt.fault)

			var out map[string]any
			resp, err := c.Do(ctx, tt.method, path, tt.in, &out)
			tt.check(t, resp, out, err)

			reqs := srv.RequestsFor(tt.route)
			require.Len(t, reqs, tt.wantAttempts, "attempts the server received")
			id := requireOneRequestID(t, reqs)
			for i, r := range reqs {
				if i < tt.n {
					require.Equal(t, tt.fault.Kind(), r.Fault, "attempt %d", i+1)
				}
			}
			if err != nil {
				require.Contains(t, err.Error(), id, "the error names the request")
			}
		})
	}
}

// TestClientSends checks, call by call, what the server received: method,
// path, query, headers and body.
func TestClientSends(t *testing.T) {
	type cred int
	const (
		withKey cred = iota
		withToken
		withBoth
	)
	tests := []struct {
		name   string
		cred   cred
		method string
		path   string // {id} is replaced by a pipeline's ID
		in     any
		want   func(srv *neuracrafttest.Server, id string) clientSent
	}{
		{
			name: "GET with API key", cred: withKey, method: "GET", path: "/pipelines/{id}",
			want: func(srv *neuracrafttest.Server, id string) clientSent {
				return clientSent{Method: "GET", Path: "/v1/pipelines/" + id, APIKey: srv.APIKey, Accept: "application/json"}
			},
		},
		{
			name: "GET with query", cred: withKey, method: "GET", path: "/pipelines?limit=1&offset=0",
			want: func(srv *neuracrafttest.Server, _ string) clientSent {
				return clientSent{Method: "GET", Path: "/v1/pipelines", APIKey: srv.APIKey, Accept: "application/json",
					Query: url.Values{"limit": {"1"}, "offset": {"0"}}}
			},
		},
		{
			name: "POST with body and API key", cred: withKey, method: "POST", path: "/pipelines",
			in: map[string]any{"name": "nightly-etl", "steps": []any{"extract", map[string]any{"load": true}}, "retries": 3},
			want: func(srv *neuracrafttest.Server, _ string) clientSent {
				return clientSent{Method: "POST", Path: "/v1/pipelines", APIKey: srv.APIKey, Accept: "application/json",
					ContentType: "application/json",
					Body:        map[string]any{"name": "nightly-etl", "steps": []any{"extract", map[string]any{"load": true}}, "retries": 3.0}}
			},
		},
		{
			name: "POST with a struct body and token", cred: withToken, method: "POST", path: "/pipelines",
			in: clientPipeline{Name: "nightly-etl", Schedule: "@daily"},
			want: func(srv *neuracrafttest.Server, _ string) clientSent {
				return clientSent{Method: "POST", Path: "/v1/pipelines", Authorization: "Bearer " + srv.Token,
					Accept: "application/json", ContentType: "application/json",
					Body: map[string]any{"id": "", "name": "nightly-etl", "schedule": "@daily", "created_at": ""}}
			},
		},
		{
			name: "POST without body", cred: withKey, method: "POST", path: "/pipelines/{id}/run",
			want: func(srv *neuracrafttest.Server, id string) clientSent {
				return clientSent{Method: "POST", Path: "/v1/pipelines/" + id + "/run", APIKey: srv.APIKey, Accept: "application/json"}
			},
		},
		{
			name: "DELETE with token and key: only the token is sent", cred: withBoth, method: "DELETE", path: "/pipelines/{id}",
			want: func(srv *neuracrafttest.Server, id string) clientSent {
				return clientSent{Method: "DELETE", Path: "/v1/pipelines/" + id, Authorization: "Bearer " + srv.Token,
					Accept: "application/json"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newClientServer(t)
			p := createClientPipeline(t, srv, c, "nightly-etl")
			switch tt.cred {
			case withToken:
				t.Setenv(neuracraft.EnvAPIKey, "nc_env_key") // not sent along with a token either
				c = &neuracraft.Client{BaseURL: srv.URL, Token: srv.Token}
			case withBoth:
				c = &neuracraft.Client{BaseURL: srv.URL, Token: srv.Token, APIKey: srv.APIKey}
			}
			resp, err := c.Do(t.Context(), tt.method, strings.ReplaceAll(tt.path, "{id}", p.ID), tt.in, nil)
			require.NoError(t, err)

			reqs := srv.Requests()
			require.Len(t, reqs, 1)
			got := clientSentOf(t, reqs[0])
			require.Empty(t, cmp.Diff(tt.want(srv, p.ID), got, cmpopts.EquateEmpty()))
			require.True(t, strings.HasPrefix(reqs[0].Header.Get("User-Agent"), "neuracraft-go"),
				"User-Agent %q", reqs[0].Header.Get("User-Agent"))
			id := requireOneRequestID(t, reqs)
			require.Equal(t, id, resp.RequestID)
			if tt.cred != withKey {
				require.Empty(t, reqs[0].Header.Values("X-API-Key"), "no X-API-Key along with a token")
			}
		})
	}
}

// TestClientRequestIDsDiffer checks that two calls get two request IDs.
func TestClientRequestIDsDiffer(t *testing.T) {
	srv, c := newClientServer(t)
	r1, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	require.NoError(t, err)
	r2, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	require.NoError(t, err)
	require.NotEqual(t, r1.RequestID, r2.RequestID)
	require.Len(t, srv.Requests(), 2)
}

// TestClientEncodingErrorSendsNothing checks that a request body that is
// not JSON-encodable fails before anything is sent.
func TestClientEncodingErrorSendsNothing(t *testing.T) {
	srv, c := newClientServer(t)
	_, err := c.Do(t.Context(), "POST", "/pipelines", map[string]any{"name": make(chan int)}, nil)
	require.Error(t, err)
	var unsupported *json.UnsupportedTypeError
	require.True(t, errors.As(err, &unsupported), "%v", err)
	require.Contains(t, err.Error(), "POST /v1/pipelines")
	require.Empty(t, srv.Requests())
}

// TestClientEnvironment checks that empty fields come from the
// environment, and that set fields win over it.
func TestClientEnvironment(t *testing.T) {
	t.Run("base URL and key from the environment", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		t.Setenv(neuracraft.EnvBaseURL, srv.URL)
		t.Setenv(neuracraft.EnvAPIKey, srv.APIKey)

		var c neuracraft.Client
		require.Equal(t, fmt.Sprintf("neuracraft.Client{BaseURL: %q, credentials: API key}", srv.URL), c.String())
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.NoError(t, err)
		reqs := srv.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "/v1/pipelines", reqs[0].Path)
		require.Equal(t, srv.APIKey, reqs[0].Header.Get("X-API-Key"))
	})

	t.Run("fields win over the environment", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		t.Setenv(neuracraft.EnvBaseURL, "http://127.0.0.1:1/v1")
		t.Setenv(neuracraft.EnvAPIKey, "nc_env_key")

		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.NoError(t, err)
		reqs := srv.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, srv.APIKey, reqs[0].Header.Get("X-API-Key"))
	})

	t.Run("DefaultBaseURL when both are empty", func(t *testing.T) {
		t.Setenv(neuracraft.EnvBaseURL, "")
		t.Setenv(neuracraft.EnvAPIKey, "")
		var sent []string
		c := &neuracraft.Client{HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = append(sent, r.URL.String())
			return nil, errNoNetwork
		})}}
		require.Equal(t, `neuracraft.Client{BaseURL: "https://api.neuracraft.com/v1", credentials: none}`, c.String())
		_, err := c.Do(t.Context(), "GET", "/pipelines?limit=1", nil, nil)
		require.ErrorIs(t, err, errNoNetwork)
		require.Equal(t, []string{neuracraft.DefaultBaseURL + "/pipelines?limit=1"}, sent)
	})

	t.Run("String with a token", func(t *testing.T) {
		c := &neuracraft.Client{BaseURL: "https://nc.example.com/api/v1", Token: clientSecretToken}
		require.Equal(t, `neuracraft.Client{BaseURL: "https://nc.example.com/api/v1", credentials: bearer token}`, c.String())
	})
}

// TestClientPathJoining checks how a call's path is joined to BaseURL.
func TestClientPathJoining(t *testing.T) {
	srv, c := newClientServer(t)
	p := createClientPipeline(t, srv, c, "nightly-etl")
	tests := []struct {
		name      string
		base      string
		path      string
		wantPath  string
		wantQuery url.Values
	}{
		{"leading slash", srv.URL, "/pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"no leading slash", srv.URL, "pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"base with trailing slash", srv.URL + "/", "/pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"base with trailing slash, no leading slash", srv.URL + "/", "pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"query", srv.URL, "/pipelines?limit=1&offset=0", "/v1/pipelines", url.Values{"limit": {"1"}, "offset": {"0"}}},
		{"query, no leading slash", srv.URL, "pipelines?limit=1&offset=0", "/v1/pipelines", url.Values{"limit": {"1"}, "offset": {"0"}}},
		{"absolute URL under BaseURL", srv.URL, srv.URL + "/pipelines/" + p.ID, "/v1/pipelines/" + p.ID, nil},
		{"absolute URL with query", srv.URL, srv.URL + "/pipelines?limit=1", "/v1/pipelines", url.Values{"limit": {"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			c := &neuracraft.Client{BaseURL: tt.base, APIKey: srv.APIKey}
			resp, err := c.Do(t.Context(), "GET", tt.path, nil, nil)
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			reqs := srv.Requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tt.wantPath, reqs[0].Path)
			require.Empty(t, cmp.Diff(tt.wantQuery, reqs[0].Query, cmpopts.EquateEmpty()))
		})
	}
}

// TestClientEscapedPath checks that a path segment the caller escaped, such
// as an ID with a slash made with url.PathEscape, reaches the server as
// sent and is not turned into two segments.
func TestClientEscapedPath(t *testing.T) {
	var mu sync.Mutex
	var got []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(ts.Close)

	c := &neuracraft.Client{BaseURL: ts.URL + "/v1", APIKey: clientSecretKey}
	for _, path := range []string{
		"/pipelines/" + url.PathEscape("team/etl"),
		"/pipelines/" + url.PathEscape("a b") + "/run",
		ts.URL + "/v1/pipelines/" + url.PathEscape("team/etl"),
	} {
		_, err := c.Do(t.Context(), "POST", path, nil, nil)
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, cmp.Diff([]string{
		"/v1/pipelines/team%2Fetl",
		"/v1/pipelines/a%20b/run",
		"/v1/pipelines/team%2Fetl",
	}, got))
}

// TestClientAbsoluteURLElsewhere checks that an absolute URL outside
// BaseURL is refused before anything is sent.
func TestClientAbsoluteURLElsewhere(t *testing.T) {
	srv, c := newClientServer(t)
	other := neuracrafttest.NewServer()
	t.Cleanup(other.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	for _, target := range []string{
		other.URL + "/pipelines",                                             // another port
		"http://localhost:" + u.Port() + "/v1/pipelines",                     // another host name
		"https://" + u.Host + "/v1/pipelines",                                // another scheme
		"http://" + u.Host + "/v2/pipelines",                                 // outside the base path
		"http://" + u.Host + "/v1extra/pipelines",                            // a prefix that is not a path prefix
		"http://" + u.Host + "/pipelines",                                    // above the base path
		"https://evil.example/v1/pipelines?next=" + url.QueryEscape(srv.URL), // base URL in the query
	} {
		t.Run(target, func(t *testing.T) {
			resp, err := c.Do(t.Context(), "GET", target, nil, nil)
			require.Nil(t, resp)
			require.Error(t, err)
			require.Contains(t, err.Error(), "not under the base URL")
			require.Empty(t, srv.Requests())
			require.Empty(t, other.Requests())
		})
	}
}

// TestClientRefusesPlainHTTP checks that credentials are sent over plain
// HTTP only to loopback addresses, and that the check happens before any
// network I/O.
func TestClientRefusesPlainHTTP(t *testing.T) {
	tests := []struct {
		base   string
		key    string
		token  string
		refuse bool
	}{
		{base: "http://example.invalid/v1", key: clientSecretKey, refuse: true},
		{base: "http://example.invalid/v1", token: clientSecretToken, refuse: true},
		{base: "http://127.0.0.1.nip.io:8080/v1", key: clientSecretKey, refuse: true},
		{base: "http://localhost.example.com/v1", key: clientSecretKey, refuse: true},
		{base: "http://10.0.0.1/v1", key: clientSecretKey, refuse: true},
		{base: "http://example.invalid/v1"}, // no credentials: allowed
		{base: "https://example.invalid/v1", key: clientSecretKey},
		{base: "http://localhost:1/v1", key: clientSecretKey},
		{base: "http://127.0.0.2:1/v1", key: clientSecretKey},
		{base: "http://[::1]:1/v1", token: clientSecretToken},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s key=%t token=%t", tt.base, tt.key != "", tt.token != "")
		t.Run(name, func(t *testing.T) {
			t.Setenv(neuracraft.EnvAPIKey, "")
			hc, sent := noNetwork()
			c := &neuracraft.Client{BaseURL: tt.base, APIKey: tt.key, Token: tt.token, HTTPClient: hc}
			_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			require.Error(t, err)
			if !tt.refuse {
				require.ErrorIs(t, err, errNoNetwork)
				require.Equal(t, int32(1), sent.Load())
				return
			}
			require.NotErrorIs(t, err, errNoNetwork)
			require.Contains(t, err.Error(), "refusing to send credentials")
			require.Zero(t, sent.Load(), "nothing may reach the transport")
		})
	}
}

// TestClientInvalidBaseURL checks that a BaseURL that is not an absolute
// http(s) URL fails before anything is sent, without printing user
// information.
func TestClientInvalidBaseURL(t *testing.T) {
	for _, base := range []string{
		"api.neuracraft.com/v1",
		"/v1",
		"ftp://api.neuracraft.com/v1",
		"ftp://user:" + clientSecretKey + "@api.neuracraft.com/v1",
		"https://",
		"http://[::1/v1",
		"://api.neuracraft.com",
	} {
		t.Run(base, func(t *testing.T) {
			hc, sent := noNetwork()
			c := &neuracraft.Client{BaseURL: base, APIKey: clientSecretKey, HTTPClient: hc}
			resp, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			require.Nil(t, resp)
			require.Error(t, err)
			require.Contains(t, err.Error(), "invalid base URL")
			require.NotContains(t, err.Error(), clientSecretKey)
			require.Zero(t, sent.Load())
		})
	}
}

// TestClientUsesOwnHTTPClient checks that a caller's *http.Client sends
// the requests, keeps its settings, and is not modified.
func TestClientUsesOwnHTTPClient(t *testing.T) {
	t.Run("plain http.Client is wrapped, not modified", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		var used atomic.Int32
		base := &http.Transport{}
		t.Cleanup(base.CloseIdleConnections)
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			used.Add(1)
			return base.RoundTrip(r)
		})
		hc := &http.Client{Transport: rt, Timeout: 300 * time.Millisecond}
		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: hc, Retry: fastRetry}

		srv.Fail("GET /pipelines", 1, neuracrafttest.Error(503, "service_unavailable", "maintenance"))
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.NoError(t, err, "the wrapping Transport retries")
		require.Equal(t, int32(2), used.Load(), "every attempt goes through the caller's transport")

		// The caller's Timeout applies: a stalled body ends the call, whose
		// context has no deadline of its own.
		srv.Fail("GET /pipelines", 1, neuracrafttest.Stall(200))
		_, err = c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Contains(t, err.Error(), "reading the response body")

		_, isRT := hc.Transport.(roundTripFunc)
		require.True(t, isRT, "the caller's client keeps its transport, got %T", hc.Transport)
		require.Equal(t, 300*time.Millisecond, hc.Timeout)
	})

	t.Run("client with a *Transport is used as is", func(t *testing.T) {
		srv := neuracrafttest.NewServer()
		t.Cleanup(srv.Close)
		tr := &neuracraft.Transport{Retry: neuracraft.RetryPolicy{MaxAttempts: 1}}
		hc := &http.Client{Transport: tr}
		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: hc}

		srv.Fail("GET /pipelines", 1, neuracrafttest.Error(503, "service_unavailable", "maintenance"))
		_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
		require.ErrorIs(t, err, neuracraft.ErrUnavailable)
		require.Len(t, srv.RequestsFor("GET /pipelines"), 1)
		require.Same(t, tr, hc.Transport)
	})
}

// TestClientRetryPolicy checks that Client.Retry configures the Transport
// the Client adds.
func TestClientRetryPolicy(t *testing.T) {
	for _, tt := range []struct {
		maxAttempts  int
		wantAttempts int
		wantErr      bool
	}{
		{maxAttempts: 1, wantAttempts: 1, wantErr: true},
		{maxAttempts: 2, wantAttempts: 2, wantErr: true},
		{maxAttempts: 3, wantAttempts: 3, wantErr: false},
	} {
		t.Run("MaxAttempts "+strconv.Itoa(tt.maxAttempts), func(t *testing.T) {
			srv, c := newClientServer(t)
			c.Retry.MaxAttempts = tt.maxAttempts
			srv.Fail("GET /pipelines", 2, neuracrafttest.Error(500, "internal_error", "boom"))
			_, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
			if tt.wantErr {
				require.ErrorIs(t, err, neuracraft.ErrInternal)
				require.Equal(t, tt.wantAttempts, requireAPIError(t, err).Attempts)
			} else {
				require.NoError(t, err)
			}
			require.Len(t, srv.RequestsFor("GET /pipelines"), tt.wantAttempts)
		})
	}
}

// TestClientRedirectKeepsCredentials checks that a redirect does not carry
// the credentials to a host other than BaseURL's, while a redirect within
// the API keeps them.
func TestClientRedirectKeepsCredentials(t *testing.T) {
	var mu sync.Mutex
	received := map[string]http.Header{}
	record := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			received[name+" "+r.URL.Path] = r.Header.Clone()
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		})
	}
	elsewhere := httptest.NewServer(record("elsewhere"))
	t.Cleanup(elsewhere.Close)
	eu, err := url.Parse(elsewhere.URL)
	require.NoError(t, err)
	otherHost := "http://localhost:" + eu.Port() // 127.0.0.1 is the API's host name

	mux := http.NewServeMux()
	mux.Handle("/v1/moved", http.RedirectHandler("/v1/here", http.StatusFound))
	mux.Handle("/v1/away", http.RedirectHandler(otherHost+"/v1/there", http.StatusFound))
	mux.Handle("/v1/here", record("api"))
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)

	for _, tt := range []struct {
		name string
		c    *neuracraft.Client
	}{
		{"API key", &neuracraft.Client{BaseURL: api.URL + "/v1", APIKey: clientSecretKey}},
		{"token", &neuracraft.Client{BaseURL: api.URL + "/v1", Token: clientSecretToken}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			clear(received)
			mu.Unlock()

			_, err := tt.c.Do(t.Context(), "GET", "/moved", nil, nil)
			require.NoError(t, err)
			_, _ = tt.c.Do(t.Context(), "GET", "/away", nil, nil) // following or refusing are both fine

			mu.Lock()
			defer mu.Unlock()
			here := received["api /v1/here"]
			require.NotNil(t, here, "the redirect within the API is followed")
			require.True(t, here.Get("X-API-Key") == clientSecretKey || here.Get("Authorization") == "Bearer "+clientSecretToken,
				"credentials are kept within the API")
			if there := received["elsewhere /v1/there"]; there != nil {
				require.Empty(t, there.Get("X-API-Key"), "X-API-Key sent to another host after a redirect")
				require.Empty(t, there.Get("Authorization"), "Authorization sent to another host after a redirect")
			}
		})
	}
}

// TestClientBadSuccessBodies checks success bodies that are not the JSON
// promised, and bodies that are empty.
func TestClientBadSuccessBodies(t *testing.T) {
	ts, ids := clientOddServer(t)
	c := &neuracraft.Client{BaseURL: ts.URL + "/v1", APIKey: clientSecretKey}

	t.Run("not JSON", func(t *testing.T) {
		var out clientPipeline
		resp, err := c.Do(t.Context(), "GET", "/html", nil, &out)
		require.Error(t, err)
		var apiErr *neuracraft.APIError
		require.False(t, errors.As(err, &apiErr), "a 200 is not an *APIError: %v", err)
		var syntaxErr *json.SyntaxError
		require.True(t, errors.As(err, &syntaxErr), "%v", err)
		sent := ids()
		id := sent[len(sent)-1]
		require.Regexp(t, requestIDPattern, id)
		require.Contains(t, err.Error(), "(request "+id+")")
		require.True(t, strings.HasPrefix(err.Error(), "neuracraft: GET /v1/html: 200 OK"), err.Error())
		require.Nil(t, resp, "no metadata beside an error")
		require.Equal(t, clientPipeline{}, out)
	})

	t.Run("wrong JSON type", func(t *testing.T) {
		var out clientPipeline
		_, err := c.Do(t.Context(), "GET", "/wrong-type", nil, &out)
		var typeErr *json.UnmarshalTypeError
		require.True(t, errors.As(err, &typeErr), "%v", err)
	})

	t.Run("not JSON, out nil", func(t *testing.T) {
		resp, err := c.Do(t.Context(), "GET", "/html", nil, nil)
		require.NoError(t, err, "the body is discarded")
		require.Equal(t, 200, resp.StatusCode)
	})

	for _, path := range []string{"/blank", "/no-content", "/empty-json"} {
		t.Run("empty body "+path, func(t *testing.T) {
			out := clientPipeline{Name: "untouched"}
			resp, err := c.Do(t.Context(), "GET", path, nil, &out)
			require.NoError(t, err)
			require.Equal(t, clientPipeline{Name: "untouched"}, out)
			require.NotEmpty(t, resp.RequestID)
		})
	}
}

// TestClientMaxResponseBody checks that a success body larger than
// MaxResponseBody is an error, never silently cut, and that one of exactly
// MaxResponseBody bytes is decoded.
func TestClientMaxResponseBody(t *testing.T) {
	srv, c := newClientServer(t)
	p := createClientPipeline(t, srv, c, "nightly-etl")
	resp, err := c.Do(t.Context(), "GET", "/pipelines/"+p.ID, nil, nil)
	require.NoError(t, err)
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	require.NoError(t, err)

	for _, tt := range []struct {
		limit   int64
		wantErr bool
	}{
		{limit: size, wantErr: false},
		{limit: size - 1, wantErr: true},
		{limit: 1, wantErr: true},
		{limit: 0, wantErr: false},                 // defaultMaxResponseBody
		{limit: math.MaxInt64, wantErr: false},     // as good as no limit
		{limit: math.MaxInt64 - 1, wantErr: false}, // likewise
	} {
		t.Run(strconv.FormatInt(tt.limit, 10), func(t *testing.T) {
			c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, MaxResponseBody: tt.limit}
			var out clientPipeline
			resp, err := c.Do(t.Context(), "GET", "/pipelines/"+p.ID, nil, &out)
			if !tt.wantErr {
				require.NoError(t, err)
				require.Empty(t, cmp.Diff(p, out), "the body is decoded in full")
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), fmt.Sprintf("larger than %d bytes", tt.limit))
			require.Nil(t, resp, "no metadata beside an error")
			require.Contains(t, err.Error(), "(request ")
			require.Equal(t, clientPipeline{}, out, "a cut body is not decoded")
			var apiErr *neuracraft.APIError
			require.False(t, errors.As(err, &apiErr))
		})
	}

	t.Run("slow body over the limit", func(t *testing.T) {
		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, MaxResponseBody: 100}
		srv.Fail("GET /pipelines/{id}", 1, neuracrafttest.SlowBody(200, 300, 50, time.Millisecond))
		var out clientPipeline
		_, err := c.Do(t.Context(), "GET", "/pipelines/"+p.ID, nil, &out)
		require.ErrorContains(t, err, "larger than 100 bytes")
		require.Equal(t, clientPipeline{}, out)
	})
}

// TestClientSecrets checks that credentials appear in no error, in no
// formatting of the Client, and in no log line of either.
func TestClientSecrets(t *testing.T) {
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddAPIKey(clientSecretKey, "pipeline:read")
	srv.AddToken(clientSecretToken, "pipeline:read")
	t.Setenv(neuracraft.EnvAPIKey, "")

	// Two attempts and no budget, so that each scenario uses exactly the
	// faults it queues.
	policy := neuracraft.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond, Budget: neuracraft.RetryBudget{Disabled: true}}
	keyClient := &neuracraft.Client{BaseURL: srv.URL, APIKey: clientSecretKey, Retry: policy}
	tokenClient := &neuracraft.Client{BaseURL: srv.URL, Token: clientSecretToken, Retry: policy}
	resetClient := &neuracraft.Client{BaseURL: srv.URL, APIKey: clientSecretKey, Retry: policy,
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	ctx := t.Context()
	do := func(c *neuracraft.Client, method, path string) error {
		_, err := c.Do(ctx, method, path, map[string]string{"name": "x"}, &struct{}{})
		return err
	}
	stalled := func(c *neuracraft.Client) error {
		srv.Fail("GET /pipelines", 1, neuracrafttest.Stall(200))
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := c.Do(ctx, "GET", "/pipelines", nil, nil)
		return err
	}

	scenarios := []struct {
		name string
		err  func() error
	}{
		{"404", func() error { return do(keyClient, "GET", "/pipelines/pipe_missing") }},
		{"403", func() error { return do(keyClient, "POST", "/pipelines") }},
		{"403 token", func() error { return do(tokenClient, "POST", "/pipelines") }},
		{"401 key", func() error {
			return do(&neuracraft.Client{BaseURL: srv.URL, APIKey: clientSecretKey + "x"}, "GET", "/pipelines")
		}},
		{"401 token", func() error {
			return do(&neuracraft.Client{BaseURL: srv.URL, Token: clientSecretToken + "x"}, "GET", "/pipelines")
		}},
		{"500 exhausted", func() error {
			srv.Fail("GET /pipelines", 2, neuracrafttest.Error(500, "internal_error", "boom"))
			return do(keyClient, "GET", "/pipelines")
		}},
		{"502 HTML", func() error {
			srv.Fail("POST /pipelines", 1, neuracrafttest.ProxyHTML(502))
			return do(tokenClient, "POST", "/pipelines")
		}},
		{"plugin", func() error {
			srv.Fail("GET /pipelines", 1, neuracrafttest.Plugin(500, 8102, "PDF Export Plugin failed", false))
			return do(keyClient, "GET", "/pipelines")
		}},
		{"connection reset", func() error {
			srv.Fail("POST /pipelines", 1, neuracrafttest.ResetConnection())
			return do(resetClient, "POST", "/pipelines")
		}},
		{"truncated success", func() error {
			srv.Fail("GET /pipelines", 1, neuracrafttest.Truncated(200))
			return do(keyClient, "GET", "/pipelines")
		}},
		{"stall, key", func() error { return stalled(keyClient) }},
		{"stall, token", func() error { return stalled(tokenClient) }},
		{"plain HTTP refused", func() error {
			return do(&neuracraft.Client{BaseURL: "http://example.invalid/v1", APIKey: clientSecretKey}, "GET", "/pipelines")
		}},
		{"plain HTTP refused, token", func() error {
			return do(&neuracraft.Client{BaseURL: "http://example.invalid/v1", Token: clientSecretToken}, "GET", "/pipelines")
		}},
		{"other host", func() error { return do(keyClient, "GET", "https://evil.example/v1/pipelines") }},
		{"other host with user info", func() error {
			return do(keyClient, "GET", "https://u:"+clientSecretKey+"@evil.example/v1/pipelines")
		}},
		{"base URL with user info", func() error {
			return do(&neuracraft.Client{BaseURL: "https://u:" + clientSecretToken + "@" + strings.TrimPrefix(srv.URL, "http://"),
				APIKey: "k"}, "GET", "https://evil.example/v1")
		}},
		{"invalid base URL with user info", func() error {
			return do(&neuracraft.Client{BaseURL: "ftp://u:" + clientSecretKey + "@example.com/v1", APIKey: clientSecretKey},
				"GET", "/pipelines")
		}},
		{"secret in the query of an API error", func() error {
			srv.Fail("GET /pipelines", 1, neuracrafttest.Error(400, "invalid_request", "bad"))
			return do(keyClient, "GET", "/pipelines?api_key="+clientSecretKey)
		}},
		{"secret in the query of a network error", func() error {
			srv.Fail("POST /pipelines", 1, neuracrafttest.ResetConnection())
			return do(resetClient, "POST", "/pipelines?api_key="+clientSecretKey)
		}},
		{"rate limited, then held back", func() error {
			c := &neuracraft.Client{BaseURL: srv.URL, APIKey: clientSecretKey, Retry: neuracraft.RetryPolicy{MaxAttempts: 1}}
			srv.Fail("GET /pipelines", 1, neuracrafttest.RateLimit("30"))
			if err := do(c, "GET", "/pipelines"); err == nil {
				return errors.New("want a 429")
			}
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := c.Do(ctx, "GET", "/pipelines", nil, nil)
			return err
		}},
	}
	secrets := []string{clientSecretKey, clientSecretToken, "SECRET"}
	requireNoSecret := func(t *testing.T, what, s string) {
		t.Helper()
		for _, secret := range secrets {
			require.NotContains(t, s, secret, "%s leaks a credential", what)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			err := sc.err()
			require.Error(t, err)
			requireNoSecret(t, "Error()", err.Error())
			requireNoSecret(t, "%v %+v %#v %q", fmt.Sprintf("%v %+v %#v %q", err, err, err, err))
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Error("call failed", "err", err)
			slog.New(slog.NewTextHandler(&buf, nil)).Error("call failed", "err", err)
			requireNoSecret(t, "slog", buf.String())
		})
	}

	t.Run("Client formatting", func(t *testing.T) {
		for _, c := range []*neuracraft.Client{keyClient, tokenClient, {BaseURL: srv.URL, APIKey: clientSecretKey, Token: clientSecretToken}} {
			requireNoSecret(t, "fmt", fmt.Sprintf("%v %+v %#v %s", c, c, c, c))
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("client", "client", c)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("client", "client", c)
			requireNoSecret(t, "slog", buf.String())
			require.Contains(t, c.String(), srv.URL)
		}
	})
}

// TestClientConcurrent shares one Client among 50 goroutines against the
// fake server, with about one request in ten answered 503. Run with -race.
func TestClientConcurrent(t *testing.T) {
	const (
		workers = 50
		calls   = 3 // per worker: create, read back, list
		faults  = workers * calls / 10
	)
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, Retry: neuracraft.RetryPolicy{
		// Enough attempts for a call that meets every fault in a row; the
		// budget is off because this test is about sharing, not throttling.
		MaxAttempts: faults + 1,
		BaseDelay:   time.Millisecond,
		MaxDelay:    5 * time.Millisecond,
		Budget:      neuracraft.RetryBudget{Disabled: true},
	}}
	srv.Fail("*", faults, neuracrafttest.Error(503, "service_unavailable", "overloaded"))

	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for i := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("pipeline-%02d", i)
			var created clientPipeline
			resp, err := c.Do(t.Context(), "POST", "/pipelines", map[string]string{"name": name}, &created)
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", name, err)
				return
			}
			var got clientPipeline
			if _, err := c.Do(t.Context(), "GET", resp.Location.String(), nil, &got); err != nil {
				errs <- fmt.Errorf("read %s: %w", name, err)
				return
			}
			if got.Name != name || got.ID != created.ID {
				errs <- fmt.Errorf("read back %+v, want %s %s", got, created.ID, name)
			}
			if _, err := c.Do(t.Context(), "GET", "/pipelines?limit=5", nil, nil); err != nil {
				errs <- fmt.Errorf("list: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	reqs := srv.Requests()
	require.Len(t, reqs, workers*calls+faults, "every call succeeded once, after its faults")
	ids := map[string]int{}
	nfault := 0
	for _, r := range reqs {
		require.Regexp(t, requestIDPattern, r.Header.Get("X-Request-ID"))
		ids[r.Header.Get("X-Request-ID")]++
		if r.Fault != "" {
			nfault++
		}
	}
	require.Equal(t, faults, nfault)
	require.Len(t, ids, workers*calls, "one request ID per call, kept across its retries")
	var list struct {
		Total int `json:"total"`
	}
	_, err := c.Do(t.Context(), "GET", "/pipelines", nil, &list)
	require.NoError(t, err)
	require.Equal(t, workers, list.Total, "retried POSTs created each pipeline once")
}
