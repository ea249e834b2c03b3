// Helpers for the tests of package neuracraft_test, which use the package
// as a caller does (the client_*_test.go files, the failure lab, the
// cooldown's): credentials that must never show, the fake server with a
// Client that retries quickly and a pipeline on it, an http.Client with no
// network, and checks on the errors and request IDs of a call.
// helpers_lab_test.go has the failure lab's own helpers.

package neuracraft_test

import (
	"errors"
	"net/http"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// secretKey and secretToken are credentials that must never
// show in an error or a log line.
const (
	secretKey   = "nc_live_SECRET123"
	secretToken = "nc_oauth_SECRET456"
)

// fastRetry is the default policy with millisecond backoff, so that
// retries without a Retry-After do not slow the tests down.
var fastRetry = neuracraft.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

// retrying returns an http.Client whose transport is a neuracraft.Transport
// with policy p over base (nil: http.DefaultTransport): how a caller gives
// a Client its retry policy.
func retrying(base http.RoundTripper, p neuracraft.RetryPolicy) *http.Client {
	return &http.Client{Transport: &neuracraft.Transport{Base: base, Retry: p}}
}

// requestIDPattern is the form of the X-Request-ID the client generates.
var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// errNoNetwork is what noNetwork's transport answers.
var errNoNetwork = errors.New("test transport: no network")

// pipelineDoc is a pipeline as the fake server returns it.
type pipelineDoc struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Schedule  string `json:"schedule,omitempty"`
	CreatedAt string `json:"created_at"`
}

// runDoc is the answer of POST /pipelines/{id}/run.
type runDoc struct {
	RunID      string `json:"run_id"`
	Status     string `json:"status"`
	MonitorURL string `json:"monitor_url"`
}

// newServer starts a fake server, closed when t ends, and returns it
// with a Client that uses its API key and retries quickly.
func newServer(t *testing.T) (*neuracrafttest.Server, *neuracraft.Client) {
	t.Helper()
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	return srv, &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: retrying(nil, fastRetry)}
}

// createPipeline creates a pipeline named name through c and forgets
// the requests recorded so far, so that the test sees only its own.
func createPipeline(t *testing.T, srv *neuracrafttest.Server, c *neuracraft.Client, name string) pipelineDoc {
	t.Helper()
	var p pipelineDoc
	_, err := c.Do(t.Context(), http.MethodPost, "/pipelines", map[string]string{"name": name}, &p)
	require.NoError(t, err)
	require.NotEmpty(t, p.ID)
	srv.ResetRequests()
	return p
}

// noNetwork returns an *http.Client whose transport sends nothing and
// counts the requests it was asked to send, and the counter.
func noNetwork() (*http.Client, *atomic.Int32) {
	var n atomic.Int32
	return &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		n.Add(1)
		return nil, errNoNetwork
	})}, &n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// requireAPIError asserts that err is or wraps an *APIError and returns it.
func requireAPIError(t *testing.T, err error) *neuracraft.APIError {
	t.Helper()
	require.Error(t, err)
	var apiErr *neuracraft.APIError
	require.ErrorAs(t, err, &apiErr, "want an *APIError, got %T: %v", err, err)
	return apiErr
}

// requireOneRequestID asserts that every request in reqs carries the same
// generated X-Request-ID and returns it.
func requireOneRequestID(t *testing.T, reqs []neuracrafttest.Request) string {
	t.Helper()
	require.NotEmpty(t, reqs)
	id := reqs[0].Header.Get("X-Request-ID")
	require.Regexp(t, requestIDPattern, id)
	for i, r := range reqs {
		require.Equal(t, id, r.Header.Get("X-Request-ID"), "attempt %d", i+1)
	}
	return id
}
