// Tests of Client against every fault kind of neuracrafttest, and of one
// Client shared by many goroutines.

package neuracraft_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientFaults drives every fault kind of neuracrafttest through the
// Client.
func TestClientFaults(t *testing.T) {
	const pluginMessage = "PDF Export Plugin: Failed to generate document due to invalid template."
	noKeepAlive := func() http.RoundTripper {
		// A fresh transport without keep-alives: net/http's own transparent
		// retry of requests on a reused connection cannot hide a reset.
		return &http.Transport{DisableKeepAlives: true}
	}
	t.Run("rate_limit without Retry-After, exhausted", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines", fault: neuracrafttest.RateLimit(""), n: 3, policy: neuracraft.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond}, wantAttempts: 2})
		apiErr := requireAPIError(t, err)
		require.ErrorIs(t, err, neuracraft.ErrRateLimited)
		require.Equal(t, "rate_limit_exceeded", apiErr.Reason)
		require.Zero(t, apiErr.RetryAfter)
		require.Equal(t, 2, apiErr.Attempts)
	})
	t.Run("error with a status outside the reference", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "DELETE", route: "DELETE /pipelines/{id}", fault: neuracrafttest.Error(409, "conflict", "Pipeline is running"), n: 1, wantAttempts: 1})
		apiErr := requireAPIError(t, err)
		require.ErrorIs(t, err, neuracraft.Code(409))
		require.Equal(t, "conflict", apiErr.Reason)
		require.Equal(t, "Pipeline is running", apiErr.Message)
		require.False(t, neuracraft.IsRetryable(err))
	})
	t.Run("plugin, retryable false, GET not retried", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.Plugin(500, 8102, pluginMessage, false), n: 1, wantAttempts: 1})
		apiErr := requireAPIError(t, err)
		require.True(t, neuracraft.IsPlugin(err))
		require.ErrorIs(t, err, neuracraft.Code(8102))
		require.ErrorIs(t, err, neuracraft.ErrPlugin)
		require.ErrorIs(t, err, neuracraft.ErrInternal, "the HTTP status still classifies")
		require.Equal(t, 500, apiErr.StatusCode)
		require.Equal(t, neuracraft.Code(8102), apiErr.Code)
		require.Equal(t, pluginMessage, apiErr.Message)
		require.JSONEq(t, `{"plugin_id":"pdf-export","attempt":1}`, string(apiErr.Details))
		require.NotNil(t, apiErr.Retryable)
		require.False(t, *apiErr.Retryable)
		require.False(t, neuracraft.IsRetryable(err))
		require.Contains(t, err.Error(), "HTTP 500")
	})
	t.Run("plugin, retryable true, POST retried", func(t *testing.T) {
		resp, out, err := doWithFault(t, faultCase{method: "POST", route: "POST /pipelines/{id}/run", fault: neuracrafttest.Plugin(500, 8102, pluginMessage, true), n: 1, wantAttempts: 2})
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		require.Equal(t, out["run_id"], resp.TaskID)
	})
	t.Run("plugin, retryable true, MaxAttempts 1", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "POST", route: "POST /pipelines/{id}/run", fault: neuracrafttest.Plugin(503, 8102, pluginMessage, true), n: 1, policy: neuracraft.RetryPolicy{MaxAttempts: 1}, wantAttempts: 1})
		apiErr := requireAPIError(t, err)
		require.True(t, neuracraft.IsPlugin(err))
		require.ErrorIs(t, err, neuracraft.Code(8102))
		require.ErrorIs(t, err, neuracraft.ErrUnavailable)
		require.NotNil(t, apiErr.Retryable)
		require.True(t, *apiErr.Retryable)
		require.True(t, neuracraft.IsRetryable(err))
		require.JSONEq(t, `{"plugin_id":"pdf-export","attempt":1}`, string(apiErr.Details))
	})
	t.Run("proxy_html 502, not retried for POST", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "POST", route: "POST /pipelines", in: map[string]string{"name": "nightly-etl"}, fault: neuracrafttest.ProxyHTML(502), n: 1, wantAttempts: 1})
		apiErr := requireAPIError(t, err)
		require.Equal(t, 502, apiErr.StatusCode)
		require.Equal(t, neuracraft.Code(502), apiErr.Code)
		require.Equal(t, "Bad Gateway", apiErr.Message)
		require.Empty(t, apiErr.Reason)
		require.Contains(t, string(apiErr.Body), "<h1>502 Bad Gateway</h1>")
		require.Contains(t, string(apiErr.Body), "<center>nginx</center>")
		require.NotContains(t, err.Error(), "<")
		require.True(t, neuracraft.IsRetryable(err))
	})
	t.Run("proxy_html 502, GET retried", func(t *testing.T) {
		_, out, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.ProxyHTML(502), n: 1, wantAttempts: 2})
		require.NoError(t, err)
		require.Equal(t, "nightly-etl", out["name"])
	})
	t.Run("truncated success body", func(t *testing.T) {
		resp, _, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.Truncated(200), n: 1, wantAttempts: 1})
		require.Error(t, err)
		var apiErr *neuracraft.APIError
		require.False(t, errors.As(err, &apiErr), "a 200 is not an *APIError: %v", err)
		var syntaxErr *json.SyntaxError
		require.True(t, errors.As(err, &syntaxErr), "%v", err)
		require.Nil(t, resp, "no metadata beside an error")
		require.Contains(t, err.Error(), ": 200 OK: ")
		require.Contains(t, err.Error(), "(request ")
		require.Contains(t, err.Error(), "decoding the response body")
	})
	t.Run("truncated error body", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.Truncated(503), n: 1, policy: neuracraft.RetryPolicy{MaxAttempts: 1}, wantAttempts: 1})
		apiErr := requireAPIError(t, err)
		require.ErrorIs(t, err, neuracraft.ErrUnavailable)
		require.Equal(t, "Service Unavailable", apiErr.Message)
		require.Error(t, apiErr.Err, "the broken body is reported")
		require.True(t, strings.HasPrefix(string(apiErr.Body), `{"error":{`), string(apiErr.Body))
	})
	t.Run("reset_connection, GET retried", func(t *testing.T) {
		resp, out, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.ResetConnection(), n: 1, base: noKeepAlive, wantAttempts: 2})
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "nightly-etl", out["name"])
	})
	t.Run("reset_connection, POST not retried", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "POST", route: "POST /pipelines", in: map[string]string{"name": "nightly-etl"}, fault: neuracrafttest.ResetConnection(), n: 1, base: noKeepAlive, wantAttempts: 1})
		require.Error(t, err)
		var apiErr *neuracraft.APIError
		require.False(t, errors.As(err, &apiErr), "a reset is not an *APIError: %v", err)
		require.True(t, neuracraft.IsRetryable(err), "a reset is transient: %v", err)
		require.Contains(t, err.Error(), "POST /v1/pipelines")
	})
	t.Run("slow_body delivered in full", func(t *testing.T) {
		resp, out, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.SlowBody(200, 600, 64, time.Millisecond), n: 1, wantAttempts: 1})
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "600", resp.Header.Get("Content-Length"))
		require.Empty(t, cmp.Diff(map[string]any{"id": "pipe_0123456789ab", "name": "nightly-etl",
			"created_at": "2025-01-01T00:00:00Z"}, out))
	})
	t.Run("stall after a 200", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.Stall(200), n: 1, timeout: 200 * time.Millisecond, wantAttempts: 1})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, neuracraft.IsRetryable(err))
	})
	t.Run("stall after a 503", func(t *testing.T) {
		_, _, err := doWithFault(t, faultCase{method: "GET", route: "GET /pipelines/{id}", fault: neuracrafttest.Stall(503), n: 1, timeout: 200 * time.Millisecond, wantAttempts: 1})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.False(t, neuracraft.IsRetryable(err))
	})
}

// faultCase is one case of TestClientFaults.
type faultCase struct {
	method  string
	route   string // also the path, with {id} and {run_id} replaced
	in      any
	fault   neuracrafttest.Fault
	n       int
	policy  neuracraft.RetryPolicy
	base    func() http.RoundTripper // under the Transport; nil: http.DefaultTransport
	timeout time.Duration

	wantAttempts int
}

// doWithFault makes the call of tt against the fake server with tt.fault
// on its route, checks the attempts the server received and their request
// ID, and returns what Do returned.
func doWithFault(t *testing.T, tt faultCase) (*neuracraft.Response, map[string]any, error) {
	t.Helper()
	srv, c := newServer(t)
	p := createPipeline(t, srv, c, "nightly-etl")
	var run runDoc
	_, err := c.Do(t.Context(), "POST", "/pipelines/"+p.ID+"/run", nil, &run)
	require.NoError(t, err)
	srv.ResetRequests()

	if tt.policy.MaxAttempts == 0 {
		tt.policy = fastRetry
	}
	var base http.RoundTripper
	if tt.base != nil {
		base = tt.base()
	}
	c = &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: retrying(base, tt.policy)}
	t.Cleanup(c.HTTPClient.CloseIdleConnections)
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
	return resp, out, err
}

// TestClientConcurrent shares one Client among 50 goroutines against the
// fake server, with about one request in ten answered 503. Run with -race.
func TestClientConcurrent(t *testing.T) {
	t.Parallel()
	const (
		workers = 50
		calls   = 3 // per worker: create, read back, list
		faults  = workers * calls / 10
	)
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: &http.Client{Transport: &neuracraft.Transport{
		Retry: neuracraft.RetryPolicy{
			// Enough attempts for a call that meets every fault in a row.
			MaxAttempts: faults + 1,
			BaseDelay:   time.Millisecond,
			MaxDelay:    5 * time.Millisecond,
		},
		DisableBudget: true, // this test is about sharing, not throttling
	}}}
	srv.Fail("*", faults, neuracrafttest.Error(503, "service_unavailable", "overloaded"))

	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for i := range workers {
		wg.Go(func() {
			name := fmt.Sprintf("pipeline-%02d", i)
			var created pipelineDoc
			resp, err := c.Do(t.Context(), "POST", "/pipelines", map[string]string{"name": name}, &created)
			if err != nil {
				errs <- fmt.Errorf("create %s: %w", name, err)
				return
			}
			var got pipelineDoc
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
