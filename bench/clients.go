// This file holds the clients under comparison and the one call helper
// that every scenario uses to drive them the same way.

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/go-resty/resty/v2"
	"github.com/hashicorp/go-retryablehttp"
	neuracraft "github.com/neuracraft/neuracraft-go"
)

// kind names one of the compared clients.
type kind int

const (
	bare      kind = iota // a plain *http.Transport
	retryable             // go-retryablehttp with its defaults
	failsafe              // failsafe-go's failsafehttp with its default retry policy
	restyKind             // resty with retries turned on (SetRetryCount(3))
	backoffRT             // a minimal RoundTripper on cenkalti/backoff (backoff.go)
	ours                  // neuracraft.WrapClient with the default policy
	numKinds
)

var kinds = [numKinds]kind{bare, retryable, failsafe, restyKind, backoffRT, ours}

func (k kind) String() string {
	switch k {
	case bare:
		return "bare"
	case retryable:
		return "retryablehttp"
	case failsafe:
		return "failsafehttp"
	case restyKind:
		return "resty"
	case backoffRT:
		return "backoff"
	case ours:
		return "neuracraft"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// restyRetryCount is the retry count resty's README sets to turn retries
// on ("Set retry count to non zero to enable retries": SetRetryCount(3));
// resty's default is 0, no retries.
const restyRetryCount = 3

// order returns the clients in the order they run in repetition rep:
// round robin, starting one further each repetition, so that no client
// always runs first (on a cold machine) or last.
func order(rep int) [numKinds]kind {
	var o [numKinds]kind
	for i := range o {
		o[i] = kinds[(rep+i)%len(kinds)]
	}
	return o
}

// client is one client under test, with its own fresh connection pool.
type client struct {
	kind kind
	hc   *http.Client          // bare, failsafe, backoffRT and ours
	rc   *retryablehttp.Client // retryable
	rs   *resty.Client         // restyKind
	// base is the transport under a wrapping RoundTripper whose own
	// CloseIdleConnections does not reach it (failsafe, backoffRT).
	base *http.Transport
}

// freshTransport is a clone of http.DefaultTransport, so that no two
// clients share a connection pool.
func freshTransport() *http.Transport {
	return http.DefaultTransport.(*http.Transport).Clone()
}

// newClient returns a client of kind k with that library's defaults.
func newClient(k kind) *client {
	c := &client{kind: k}
	switch k {
	case bare:
		c.hc = &http.Client{Transport: freshTransport()}
	case retryable:
		// NewClient builds its own fresh pooled transport
		// (cleanhttp.DefaultPooledClient); only the logger, which prints
		// a line per request, is silenced.
		c.rc = retryablehttp.NewClient()
		c.rc.Logger = nil
	case failsafe:
		// failsafehttp's retry policy builder with nothing changed: up to 2
		// retries of 429, 5xx but 501, and network errors, any method, no
		// delay unless Retry-After says so.
		c.base = freshTransport()
		c.hc = &http.Client{Transport: failsafehttp.NewRoundTripper(c.base,
			failsafehttp.NewRetryPolicyBuilder().Build())}
	case restyKind:
		// resty.New builds its own transport (GOMAXPROCS+1 idle
		// connections per host) and a cookie jar; retries are off until a
		// retry count is set.
		c.rs = resty.New().SetRetryCount(restyRetryCount)
	case backoffRT:
		c.base = freshTransport()
		c.hc = &http.Client{Transport: &backoffTransport{base: c.base}}
	case ours:
		c.hc = neuracraft.WrapClient(&http.Client{Transport: freshTransport()})
	}
	return c
}

// close drops the client's idle connections.
func (c *client) close() {
	switch {
	case c.rc != nil:
		c.rc.HTTPClient.CloseIdleConnections()
	case c.rs != nil:
		c.rs.GetClient().CloseIdleConnections()
	case c.base != nil:
		c.base.CloseIdleConnections()
	default:
		c.hc.CloseIdleConnections()
	}
}

// callHeader carries a caller-chosen call ID, so that a test server can
// tell a call's first attempt from its retries. Every client sends the
// caller's headers unchanged on every attempt.
const callHeader = "X-Bench-Call"

// call describes one logical call.
type call struct {
	method string
	url    string
	id     string // X-Bench-Call value; "" sends no such header
	// payload, when not nil, is the body, sent from a *bytes.Reader.
	payload []byte
	// gen, when positive, is the size of a generated body that the client
	// can rewind without buffering (see genBody).
	gen int64
	// plainReader passes the generated body to retryablehttp as a bare
	// io.Reader instead of a ReaderFunc (a reference case only).
	plainReader bool
}

// do makes the call and returns the final HTTP status, or an error when
// the client returned one. A response body is read to the end and closed.
func (c *client) do(ctx context.Context, cl *call) (status int, err error) {
	if c.rs != nil {
		return c.doResty(ctx, cl)
	}
	var resp *http.Response
	if c.rc != nil {
		var body any
		switch {
		case cl.payload != nil:
			body = bytes.NewReader(cl.payload)
		case cl.gen > 0 && cl.plainReader:
			body = io.Reader(newGenBody(cl.gen))
		case cl.gen > 0:
			size := cl.gen
			body = retryablehttp.ReaderFunc(func() (io.Reader, error) { return newGenBody(size), nil })
		}
		req, err := retryablehttp.NewRequestWithContext(ctx, cl.method, cl.url, body)
		if err != nil {
			return 0, err
		}
		if cl.id != "" {
			req.Header.Set(callHeader, cl.id)
		}
		resp, err = c.rc.Do(req)
		if err != nil {
			return 0, err
		}
	} else {
		var body io.Reader
		if cl.payload != nil {
			body = bytes.NewReader(cl.payload)
		}
		req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, body)
		if err != nil {
			return 0, err
		}
		if cl.gen > 0 {
			size := cl.gen
			req.Body = newGenBody(size)
			req.ContentLength = size
			req.GetBody = func() (io.ReadCloser, error) { return newGenBody(size), nil }
		}
		if cl.id != "" {
			req.Header.Set(callHeader, cl.id)
		}
		resp, err = c.hc.Do(req)
		if err != nil {
			return 0, err
		}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return resp.StatusCode, err
}

// doResty makes the call through resty, which reads the response body
// into memory itself (its default). The payload goes in as a
// *bytes.Reader, as for the others (a []byte would be copied per attempt);
// a generated body goes in as an io.Reader, which resty streams and cannot
// send again.
func (c *client) doResty(ctx context.Context, cl *call) (int, error) {
	req := c.rs.R().SetContext(ctx)
	switch {
	case cl.payload != nil:
		req.SetBody(bytes.NewReader(cl.payload))
	case cl.gen > 0:
		req.SetBody(io.Reader(newGenBody(cl.gen)))
	}
	if cl.id != "" {
		req.SetHeader(callHeader, cl.id)
	}
	resp, err := req.Execute(cl.method, cl.url)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode(), nil
}

// ok reports whether a call succeeded: no error and a 2xx status.
func ok(status int, err error) bool { return err == nil && status >= 200 && status < 300 }

// genBody is a request body of a given size whose bytes are generated as
// it is read, so that a large upload costs no memory of its own. Len lets
// retryablehttp learn the size (its LenReader), as http.NewRequest does
// for a *bytes.Reader.
type genBody struct {
	remain int64
}

func newGenBody(size int64) *genBody { return &genBody{remain: size} }

// pattern is what genBody repeats.
var pattern = bytes.Repeat([]byte("neuracraft-bench "), 2048)

func (g *genBody) Read(p []byte) (int, error) {
	if g.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.remain {
		p = p[:g.remain]
	}
	n := 0
	for n < len(p) {
		n += copy(p[n:], pattern)
	}
	g.remain -= int64(n)
	return n, nil
}

func (g *genBody) Len() int { return int(g.remain) }

func (g *genBody) Close() error { return nil }
