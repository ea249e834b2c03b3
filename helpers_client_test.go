// This file holds the helpers shared by the tests of package
// neuracraft_test, which use the package as a caller does: fake servers,
// clients with quick retries, and checks on the requests they sent.

package neuracraft_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
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

// sentRequest is what the server received in one request, for comparison.
type sentRequest struct {
	Method, Path  string
	Query         url.Values
	APIKey        string
	Authorization string
	ContentType   string
	Accept        string
	Body          any
}

// sentOf returns the parts of r that tests compare.
func sentOf(t *testing.T, r neuracrafttest.Request) sentRequest {
	t.Helper()
	s := sentRequest{
		Method: r.Method, Path: r.Path, Query: r.Query,
		APIKey:        r.Header.Get("X-API-Key"),
		Authorization: r.Header.Get("Authorization"),
		ContentType:   r.Header.Get("Content-Type"),
		Accept:        r.Header.Get("Accept"),
	}
	if len(r.Body) > 0 {
		require.NoError(t, json.Unmarshal(r.Body, &s.Body), "body %q", r.Body)
	}
	return s
}

// oddServer serves success bodies that are not what the API
// promises, and records the X-Request-ID of each request. It sends no
// X-Request-ID back.
func oddServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("X-Request-ID"))
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>Welcome to nginx!</body></html>")
		case "/v1/blank":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, " \r\n\t ")
		case "/v1/no-content":
			w.WriteHeader(http.StatusNoContent)
		case "/v1/empty-json":
			w.Header().Set("Content-Type", "application/json")
		case "/v1/wrong-type":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id": 42}`)
		}
	}))
	t.Cleanup(ts.Close)
	return ts, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}
}

// labServer starts the fake API for t and closes it when t ends. It first
// notes the goroutines running, so that t fails if the test leaves any
// goroutine behind (a process-wide check: such a test is not parallel).
func labServer(t *testing.T) *neuracrafttest.Server {
	t.Helper()
	noLeaks(t)
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// labRaw is labServer for a raw httptest server running h.
func labRaw(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	noLeaks(t)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// noLeaks fails t if a goroutine started after this call still runs when
// t ends. Call it before anything that registers a cleanup of its own,
// so that the check runs after those.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// labOptions configure a labClient.
type labOptions struct {
	apiKey      string // sent as X-API-Key when set
	retry       neuracraft.RetryPolicy
	noKeepAlive bool
	onRetry     func(neuracraft.RetryEvent)
	// wrap, when set, is put between the Transport and the http.Transport.
	wrap func(http.RoundTripper) http.RoundTripper
}

// A labClient is an http.Client whose transport is a neuracraft.Transport
// over a fresh http.Transport that counts its connections.
type labClient struct {
	*http.Client
	rt     *neuracraft.Transport
	conns  *connCounter
	apiKey string
}

// newLabClient returns a labClient and registers a cleanup, to run before
// the server's (so call it after labServer or labRaw), that closes its
// idle connections and fails t unless every connection it opened is
// closed.
func newLabClient(t *testing.T, o labOptions) *labClient {
	t.Helper()
	conns := &connCounter{}
	base := &http.Transport{DialContext: conns.DialContext, DisableKeepAlives: o.noKeepAlive}
	var next http.RoundTripper = base
	if o.wrap != nil {
		next = o.wrap(base)
	}
	rt := &neuracraft.Transport{Base: next, Retry: o.retry, OnRetry: o.onRetry}
	c := &labClient{Client: &http.Client{Transport: rt}, rt: rt, conns: conns, apiKey: o.apiKey}
	require.Zero(t, conns.Open(), "open connections before the test")
	t.Cleanup(func() {
		assert.Eventually(t, func() bool {
			c.CloseIdleConnections() // through the Transport, as a user would
			return conns.Open() == 0
		}, 2*time.Second, 10*time.Millisecond,
			"connections the client dialed still open after CloseIdleConnections (of %d)", conns.Dialed())
	})
	return c
}

// connCounter counts the connections dialed through its DialContext (set
// it as an http.Transport's): how many were dialed, how many are still
// open and how many bytes were read from them. Safe for concurrent use.
type connCounter struct {
	dialer             net.Dialer
	dialed, open, read atomic.Int64
}

// DialContext dials like net.Dialer.DialContext and counts the connection
// as open until it is first closed.
func (c *connCounter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.dialed.Add(1)
	c.open.Add(1)
	return &countedConn{Conn: conn, owner: c}, nil
}

func (c *connCounter) Dialed() int64    { return c.dialed.Load() }
func (c *connCounter) Open() int64      { return c.open.Load() }
func (c *connCounter) BytesRead() int64 { return c.read.Load() }

// countedConn is a connection that a connCounter counts.
type countedConn struct {
	net.Conn
	owner *connCounter
	once  sync.Once
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.owner.read.Add(int64(n))
	return n, err
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.owner.open.Add(-1) })
	return c.Conn.Close()
}

// send sends method url with body (none when empty) and the header given
// as key/value pairs, reads the response body to its end and closes it. It
// returns the status and the error of Do or, after a response, of reading
// its body.
func (c *labClient) send(ctx context.Context, method, url, body string, kv ...string) (int, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, err
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-Key", c.apiKey)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// labIsCut reports whether err says that a connection ended early:
// closed (EOF, unexpected EOF) or reset.
func labIsCut(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// assertSameRequestID asserts that reqs, the attempts of one call, carry one
// X-Request-ID.
func assertSameRequestID(t *testing.T, reqs []neuracrafttest.Request) {
	t.Helper()
	for _, r := range reqs[1:] {
		assert.Equal(t, reqs[0].Header.Get("X-Request-ID"), r.Header.Get("X-Request-ID"), "X-Request-ID of a retry")
	}
}

// labCutStep is one answer of a labCutServer: status with a
// Content-Length of size, of which only send bytes are sent before the
// connection is closed (with a reset when reset is set). send >= size
// answers in full.
type labCutStep struct {
	status, size, send int
	reset              bool
}

// labCutServer starts a raw server that answers its n-th request with
// steps[n], or the last step once they run out, and returns it with the
// count of requests it received.
func labCutServer(t *testing.T, steps ...labCutStep) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	ts := labRaw(t, func(w http.ResponseWriter, r *http.Request) {
		st := steps[min(int(hits.Add(1))-1, len(steps)-1)]
		_, _ = io.Copy(io.Discard, r.Body)
		doc := `{"id":"pipe_1"}`
		if st.status >= 400 {
			doc = `{"error":{"code":"cut","message":"Cut short"}}`
		}
		body := []byte(doc + strings.Repeat(" ", st.size-len(doc)))
		if st.send >= st.size {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(st.size))
			w.WriteHeader(st.status)
			_, _ = w.Write(body)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err, "hijack") {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			st.status, http.StatusText(st.status), st.size)
		_, _ = rw.Write(body[:st.send])
		_ = rw.Flush()
		if tc, ok := conn.(*net.TCPConn); ok && st.reset {
			_ = tc.SetLinger(0)
		}
	})
	return ts, &hits
}

// labAttemptLog is a RoundTripper that notes when each attempt is sent and
// when each 429 arrives.
type labAttemptLog struct {
	base    *http.Transport
	mu      sync.Mutex
	sent    []time.Time
	limited []time.Time
}

func (a *labAttemptLog) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.sent = append(a.sent, time.Now())
	a.mu.Unlock()
	resp, err := a.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		a.mu.Lock()
		a.limited = append(a.limited, time.Now())
		a.mu.Unlock()
	}
	return resp, err
}

func (a *labAttemptLog) CloseIdleConnections() { a.base.CloseIdleConnections() }

func (a *labAttemptLog) times() (sent, limited []time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.sent...), append([]time.Time(nil), a.limited...)
}

// labPattern is the filler of a labUpload: no CR, no dash, so it cannot
// hold a multipart boundary.
var labPattern = bytes.Repeat([]byte("neuracraft failure lab "), 1<<10)

// labUpload generates n bytes of labPattern, without holding them.
type labUpload struct {
	n   int64
	off int
}

func (u *labUpload) Read(p []byte) (int, error) {
	if u.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), u.n)]
	for n := 0; n < len(p); {
		k := copy(p[n:], labPattern[u.off:])
		u.off = (u.off + k) % len(labPattern)
		n += k
	}
	u.n -= int64(len(p))
	return len(p), nil
}

// labCloseCounter is a request body that counts its Close calls.
type labCloseCounter struct {
	io.Reader
	closed *atomic.Int32
}

func (c labCloseCounter) Close() error { c.closed.Add(1); return nil }

// labHost returns the host:port of a server URL.
func labHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}
