// Helpers of the failure lab (transport_lab*_test.go and the flood of
// cooldown_client_test.go), tests that put a Transport through real faults
// on loopback, against the fake server of neuracrafttest or a raw httptest
// server: servers that fail the test if it leaves a goroutine behind, an
// http.Client over a Transport over an http.Transport that counts its
// connections and fails the test if one is left open, and checks on what a
// call sent. Since the checks are process-wide, no lab test runs in
// parallel.

package neuracraft_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

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

func (c *connCounter) Dialed() int64 { return c.dialed.Load() }

func (c *connCounter) Open() int64 { return c.open.Load() }

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
