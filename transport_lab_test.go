// The failure lab (transport_lab*_test.go, helpers in helpers_lab_test.go):
// tests that put a whole Transport through real faults on loopback, against
// the fake server of neuracrafttest or a raw httptest server. Every test
// checks that it leaves no goroutine and no connection behind, so none of
// them runs in parallel. This file: a stall after the headers, connections
// cut mid-body, oversized and unlimited error bodies, and error answers
// that keep their connection.

package neuracraft_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestFailureLabStallAfterHeaders: a server that sends the headers and then
// nothing. The call ends at the caller's deadline, with an error that
// matches context.DeadlineExceeded, and is not retried.
func TestFailureLabStallAfterHeaders(t *testing.T) {
	const route = "GET /pipelines"
	t.Run("success body", func(t *testing.T) {
		srv := labServer(t)
		c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry})
		srv.Fail(route, 1, neuracrafttest.Stall(http.StatusOK))
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()

		status, err := c.send(ctx, "GET", srv.URL+"/pipelines", "")
		assert.Equal(t, http.StatusOK, status, "the headers arrive")
		require.ErrorIs(t, err, context.DeadlineExceeded, "reading the body")
		assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "the read ended at the deadline, not before")
		assert.Len(t, srv.RequestsFor(route), 1)
	})
	for _, tc := range []struct {
		method, route, path, body string
		status                    int
	}{
		{"GET", route, "/pipelines", "", http.StatusServiceUnavailable},
		{"GET", route, "/pipelines", "", http.StatusInternalServerError},
		{"POST", "POST /pipelines", "/pipelines", `{"name":"lab"}`, http.StatusServiceUnavailable},
	} {
		t.Run(fmt.Sprintf("error body %s %d", tc.method, tc.status), func(t *testing.T) {
			srv := labServer(t)
			c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry})
			srv.Fail(tc.route, 1, neuracrafttest.Stall(tc.status))
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()

			_, err := c.send(ctx, tc.method, srv.URL+tc.path, tc.body)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "the call ended at the deadline, not before")
			apiErr := requireAPIError(t, err)
			assert.Equal(t, tc.status, apiErr.StatusCode)
			assert.Equal(t, 1, apiErr.Attempts)
			assert.False(t, neuracraft.IsRetryable(err))
			assert.Len(t, srv.RequestsFor(tc.route), 1, "not retried")
		})
	}
}

// TestFailureLabCutMidBody: the server sends the headers and part of the
// body, then closes the connection (FIN or RST). A success is already the
// caller's, who sees the cut reading the body; an error body cut short
// still gives an *APIError, retried as its status says.
func TestFailureLabCutMidBody(t *testing.T) {
	for _, reset := range []bool{false, true} {
		how := "closed"
		if reset {
			how = "reset"
		}
		t.Run("success "+how, func(t *testing.T) {
			ts, hits := labCutServer(t, labCutStep{status: 200, size: 4096, send: 1000, reset: reset})
			c := newLabClient(t, labOptions{retry: fastRetry})

			status, err := c.send(t.Context(), "GET", ts.URL+"/v1/pipelines/pipe_1", "")
			assert.Equal(t, http.StatusOK, status)
			require.Error(t, err)
			assert.True(t, labIsCut(err), "error reading the body: %v", err)
			assert.True(t, neuracraft.IsRetryable(err))
			assert.Equal(t, int32(1), hits.Load())
		})
		t.Run("503 retried for POST "+how, func(t *testing.T) {
			ts, hits := labCutServer(t,
				labCutStep{status: 503, size: 4096, send: 1000, reset: reset},
				labCutStep{status: 201, size: 100, send: 100})
			var causes []error
			c := newLabClient(t, labOptions{retry: fastRetry,
				onRetry: func(ev neuracraft.RetryEvent) { causes = append(causes, ev.Err) }})

			status, err := c.send(t.Context(), "POST", ts.URL+"/v1/pipelines", `{"name":"lab"}`)
			require.NoError(t, err)
			assert.Equal(t, http.StatusCreated, status)
			assert.Equal(t, int32(2), hits.Load())
			require.Len(t, causes, 1)
			apiErr := requireAPIError(t, causes[0])
			assert.Equal(t, 503, apiErr.StatusCode)
			assert.True(t, labIsCut(apiErr.Err), "APIError.Err: %v", apiErr.Err)
		})
		t.Run("500 retried for GET "+how, func(t *testing.T) {
			ts, hits := labCutServer(t,
				labCutStep{status: 500, size: 4096, send: 1000, reset: reset},
				labCutStep{status: 200, size: 100, send: 100})
			c := newLabClient(t, labOptions{retry: fastRetry})

			status, err := c.send(t.Context(), "GET", ts.URL+"/v1/pipelines/pipe_1", "")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			assert.Equal(t, int32(2), hits.Load())
		})
		t.Run("500 not retried for POST "+how, func(t *testing.T) {
			ts, hits := labCutServer(t,
				labCutStep{status: 500, size: 4096, send: 1000, reset: reset},
				labCutStep{status: 201, size: 100, send: 100})
			c := newLabClient(t, labOptions{retry: fastRetry})

			_, err := c.send(t.Context(), "POST", ts.URL+"/v1/pipelines", `{"name":"lab"}`)
			apiErr := requireAPIError(t, err)
			assert.Equal(t, 500, apiErr.StatusCode)
			assert.Equal(t, 1, apiErr.Attempts)
			assert.True(t, labIsCut(apiErr.Err), "APIError.Err: %v", apiErr.Err)
			assert.Equal(t, "Cut short", apiErr.Message, "decoded from the part that arrived")
			assert.Equal(t, int32(1), hits.Load())
		})
	}
}

// TestFailureLabOversizedErrorBody: an error body far larger than
// MaxErrorBody is kept only up to defaultMaxErrorBody, marked Truncated,
// and the rest is not read: the connection is dropped.
func TestFailureLabOversizedErrorBody(t *testing.T) {
	t.Run("5 MiB", func(t *testing.T) {
		srv := labServer(t)
		c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry})
		srv.Fail("GET /pipelines", 1, neuracrafttest.SlowBody(http.StatusBadRequest, 5<<20, 32<<10, 0))

		_, err := c.send(t.Context(), "GET", srv.URL+"/pipelines", "")
		apiErr := requireAPIError(t, err)
		assert.Equal(t, http.StatusBadRequest, apiErr.StatusCode)
		assert.Equal(t, "invalid_request", apiErr.Reason, "decoded from the kept part")
		assert.True(t, apiErr.Truncated)
		assert.Len(t, apiErr.Body, 64<<10)
		assert.NoError(t, apiErr.Err)
		assert.Less(t, c.conns.BytesRead(), int64(1<<20), "bytes read of a 5 MiB body")
		assert.Len(t, srv.RequestsFor("GET /pipelines"), 1)
	})
	t.Run("endless", func(t *testing.T) {
		var written atomic.Int64
		ts := labRaw(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			chunk := []byte(`{"error":{"code":"internal","message":"Endless"}}` + strings.Repeat(" ", 32<<10))
			for written.Load() < 1<<30 { // a bound, in case the client reads on
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
				chunk = bytes.Repeat([]byte(" "), 32<<10)
			}
		})
		c := newLabClient(t, labOptions{retry: fastRetry})

		_, err := c.send(t.Context(), "POST", ts.URL+"/v1/pipelines", `{"name":"lab"}`)
		apiErr := requireAPIError(t, err)
		assert.Equal(t, http.StatusInternalServerError, apiErr.StatusCode)
		assert.Equal(t, "Endless", apiErr.Message)
		assert.True(t, apiErr.Truncated)
		assert.Len(t, apiErr.Body, 64<<10)
		assert.Less(t, c.conns.BytesRead(), int64(1<<20), "bytes read of an endless body")
	})
}

// TestFailureLabUnlimitedErrorBody: MaxErrorBody set to the largest
// int64, to keep error bodies whole, keeps a small error body whole, with
// or without a Content-Length. (limit+1 once overflowed there, and
// RoundTrip panicked with "makeslice: cap out of range".)
func TestFailureLabUnlimitedErrorBody(t *testing.T) {
	const doc = `{"error":{"code":"not_found","message":"No such pipeline"}}`
	ts := labRaw(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunked := r.URL.Query().Has("chunked") // no Content-Length: the size is unknown
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
		}
		w.WriteHeader(http.StatusNotFound)
		if chunked {
			_ = http.NewResponseController(w).Flush()
		}
		_, _ = io.WriteString(w, doc)
	})
	c := newLabClient(t, labOptions{retry: fastRetry})
	c.rt.MaxErrorBody = math.MaxInt64

	for _, query := range []string{"", "?chunked"} {
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("RoundTrip panicked: %v", p)
					ts.CloseClientConnections() // the panic left the response open
				}
			}()
			_, err = c.send(t.Context(), "GET", ts.URL+"/v1/pipelines/pipe_1"+query, "")
			return err
		}()
		var apiErr *neuracraft.APIError
		if !assert.ErrorAs(t, err, &apiErr, "GET %s", query) {
			continue
		}
		assert.Equal(t, http.StatusNotFound, apiErr.StatusCode)
		assert.Equal(t, "No such pipeline", apiErr.Message)
		assert.Equal(t, doc, string(apiErr.Body))
		assert.False(t, apiErr.Truncated)
	}
}

// TestFailureLabErrorsKeepConnection: failed attempts whose error bodies
// fit in MaxErrorBody plus the drain allowance leave their connection
// reusable; a longer error body costs the connection, not the time to read
// it.
func TestFailureLabErrorsKeepConnection(t *testing.T) {
	const route = "GET /pipelines"
	srv := labServer(t)
	c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry})
	srv.Fail(route, 1, neuracrafttest.ProxyHTML(502))
	srv.Fail(route, 1, neuracrafttest.Truncated(500))
	srv.Fail(route, 1, neuracrafttest.RateLimit("0"))
	srv.Fail(route, 1, neuracrafttest.SlowBody(503, 200<<10, 32<<10, 0)) // past MaxErrorBody, within the drain

	status, err := c.send(t.Context(), "GET", srv.URL+"/pipelines", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Len(t, srv.RequestsFor(route), 5, "four failures, then the success")
	assert.Equal(t, int64(1), c.conns.Dialed(), "connections dialed for five attempts")

	srv.Fail(route, 1, neuracrafttest.SlowBody(404, 2<<20, 32<<10, 0)) // past the drain
	_, err = c.send(t.Context(), "GET", srv.URL+"/pipelines", "")
	assert.ErrorIs(t, err, neuracraft.ErrNotFound)
	assert.Less(t, c.conns.BytesRead(), int64(1<<20), "bytes read of a 2 MiB error body")
	status, err = c.send(t.Context(), "GET", srv.URL+"/pipelines", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, int64(2), c.conns.Dialed(), "a new connection after the 2 MiB error body")
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
