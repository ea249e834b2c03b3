// This file holds the failure lab: tests that put Transport through real
// faults on loopback (stalls, connections cut mid-body, oversized error
// bodies, odd Retry-After values, a cooldown under load, resets, gateway
// pages, plugin errors, a 100 MiB upload), against the fake server of
// neuracrafttest or a raw httptest server. Every test checks that it leaves
// no goroutine and no connection behind, so none of them runs in parallel.

package neuracraft_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// TestFailureLabRetryAfter: a 429 whose Retry-After is negative, zero,
// fractional, garbage or a date in the past is retried after the backoff
// (as if it had no Retry-After); one too long to wait for, or longer than
// the caller's deadline, ends the call at once with RetryAfter set.
func TestFailureLabRetryAfter(t *testing.T) {
	const route = "GET /pipelines"
	for _, tc := range []struct {
		name, value string
		deadline    time.Duration // of the caller's context; 0 for none
		// wantAfter, when set, is the call's error's RetryAfter: the call
		// ends at once. Otherwise it is retried after a backoff.
		wantAfter func(time.Duration) bool
		// cooling is whether the host cools down after the answer.
		cooling bool
	}{
		{name: "negative", value: "-1"},
		{name: "zero", value: "0"},
		{name: "fraction", value: "1.5"},
		{name: "garbage", value: "soon, maybe"},
		{name: "date in the past", value: time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)},
		{name: "huge", value: "99999999999",
			wantAfter: func(d time.Duration) bool { return d == time.Duration(math.MaxInt64) }},
		{name: "date an hour ahead", value: time.Now().Add(time.Hour).UTC().Format(http.TimeFormat),
			wantAfter: func(d time.Duration) bool { return d > 59*time.Minute && d <= time.Hour }},
		{name: "longer than the deadline", value: "1", deadline: 500 * time.Millisecond,
			wantAfter: func(d time.Duration) bool { return d == time.Second }, cooling: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := labServer(t)
			var events []neuracraft.RetryEvent
			c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry,
				onRetry: func(ev neuracraft.RetryEvent) { events = append(events, ev) }})
			srv.Fail(route, 1, neuracrafttest.RateLimit(tc.value))
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}

			status, err := c.send(ctx, "GET", srv.URL+"/pipelines", "")
			reqs := srv.RequestsFor(route)
			if tc.wantAfter == nil {
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, status)
				require.Len(t, reqs, 2, "retried")
				assert.Equal(t, "rate_limit", reqs[0].Fault)
				assert.Empty(t, reqs[1].Fault)
				assertSameRequestID(t, reqs)
				require.Len(t, events, 1)
				assert.Less(t, events[0].Delay, fastRetry.BaseDelay, "the backoff, not a Retry-After")
				assert.Zero(t, requireAPIError(t, events[0].Err).RetryAfter)
			} else {
				apiErr := requireAPIError(t, err)
				assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
				assert.True(t, tc.wantAfter(apiErr.RetryAfter), "RetryAfter %v", apiErr.RetryAfter)
				assert.Equal(t, 1, apiErr.Attempts)
				assert.Len(t, reqs, 1, "returned at once")
				assert.Empty(t, events)
			}

			// A cooldown holds back a call that cannot wait for it, unsent.
			wait := 5 * time.Second
			if tc.cooling {
				wait = 100 * time.Millisecond
			}
			ctx2, cancel2 := context.WithTimeout(t.Context(), wait)
			defer cancel2()
			_, err = c.send(ctx2, "GET", srv.URL+"/pipelines", "")
			var cd *neuracraft.CooldownError
			if tc.cooling {
				require.ErrorAs(t, err, &cd)
				assert.Len(t, srv.RequestsFor(route), len(reqs), "held back")
			} else {
				assert.NoError(t, err, "no cooldown")
				assert.Len(t, srv.RequestsFor(route), len(reqs)+1)
			}
		})
	}
}

// TestFailureLabCooldownFlood: while the host cools down after a 429 with
// Retry-After: 1, 50 concurrent calls wait and are sent only after the
// cooldown, and 10 calls whose deadline comes first fail at once with a
// *CooldownError, never sent.
func TestFailureLabCooldownFlood(t *testing.T) {
	const (
		route   = "GET /pipelines"
		waiters = 50
		hasty   = 10
	)
	srv := labServer(t)
	log := &labAttemptLog{}
	retrying := make(chan struct{})
	var once sync.Once
	c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry,
		wrap: func(base http.RoundTripper) http.RoundTripper {
			log.base = base.(*http.Transport)
			return log
		},
		onRetry: func(neuracraft.RetryEvent) { once.Do(func() { close(retrying) }) },
	})
	srv.Fail(route, 1, neuracrafttest.RateLimit("1"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a bound, far off
	defer cancel()

	first := make(chan error, 1)
	go func() {
		_, err := c.send(ctx, "GET", srv.URL+"/pipelines", "", "X-Request-ID", "first")
		first <- err
	}()
	select {
	case <-retrying:
	case err := <-first:
		t.Fatalf("the first call ended without a retry: %v", err)
	}
	_, limited := log.times()
	require.Len(t, limited, 1)
	cooldownEnd := limited[0].Add(time.Second) // no earlier than the Transport's

	var wg sync.WaitGroup
	waitErrs := make([]error, waiters)
	statuses := make([]int, waiters)
	for i := range waiters {
		wg.Go(func() {
			statuses[i], waitErrs[i] = c.send(ctx, "GET", srv.URL+"/pipelines", "",
				"X-Request-ID", fmt.Sprintf("wait-%d", i))
		})
	}
	hastyErrs := make([]error, hasty)
	for i := range hasty {
		wg.Go(func() {
			short, cancel := context.WithDeadline(ctx, limited[0].Add(500*time.Millisecond))
			defer cancel()
			_, hastyErrs[i] = c.send(short, "GET", srv.URL+"/pipelines", "",
				"X-Request-ID", fmt.Sprintf("hasty-%d", i))
		})
	}
	wg.Wait()
	require.NoError(t, <-first)

	for i := range waiters {
		if assert.NoError(t, waitErrs[i], "waiter %d", i) {
			assert.Equal(t, http.StatusOK, statuses[i], "waiter %d", i)
		}
	}
	host := labHost(t, srv.URL)
	for i, err := range hastyErrs {
		var cd *neuracraft.CooldownError
		if !assert.ErrorAs(t, err, &cd, "hasty call %d", i) {
			continue
		}
		assert.ErrorIs(t, err, neuracraft.ErrRateLimited)
		assert.True(t, neuracraft.IsRetryable(err))
		assert.Equal(t, neuracraft.Code(429), cd.Cause)
		assert.Equal(t, host, cd.Host)
		assert.Equal(t, fmt.Sprintf("hasty-%d", i), cd.RequestID)
		// Its turn: the rest of the 1s cooldown, plus 10 ms for each
		// request held before it (the first call's retry and the waiters).
		assert.True(t, cd.RetryAfter > 0 && cd.RetryAfter <= time.Second+time.Duration(1+waiters)*10*time.Millisecond,
			"RetryAfter %v", cd.RetryAfter)
	}

	// The server: the 429, then the first call's retry and one request per
	// waiter, all answered 200; nothing from the hasty calls.
	reqs := srv.RequestsFor(route)
	require.Len(t, reqs, 1+1+waiters)
	assert.Equal(t, "rate_limit", reqs[0].Fault)
	assert.Equal(t, "first", reqs[0].Header.Get("X-Request-ID"))
	ids := map[string]int{}
	for _, r := range reqs[1:] {
		assert.Empty(t, r.Fault)
		ids[r.Header.Get("X-Request-ID")]++
	}
	want := map[string]int{"first": 1}
	for i := range waiters {
		want[fmt.Sprintf("wait-%d", i)] = 1
	}
	assert.Equal(t, want, ids, "X-Request-IDs received after the 429")

	// The client: every attempt after the 429 was sent after the cooldown.
	sent, _ := log.times()
	require.Len(t, sent, 1+1+waiters)
	early := 0
	for _, at := range sent[1:] {
		if at.Before(cooldownEnd) {
			early++
		}
	}
	assert.Zero(t, early, "attempts sent during the cooldown")
}

// TestFailureLabFaultMatrix: gateway pages, plugin errors, reset
// connections and cut JSON, each retried or not as the method and the
// body say.
func TestFailureLabFaultMatrix(t *testing.T) {
	const (
		get  = "GET /pipelines"
		post = "POST /pipelines"
	)
	notRetriedAPIError := func(status int, code neuracraft.Code) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			apiErr := requireAPIError(t, err)
			assert.Equal(t, status, apiErr.StatusCode)
			assert.Equal(t, code, apiErr.Code)
			assert.Equal(t, 1, apiErr.Attempts)
		}
	}
	for _, tc := range []struct {
		name        string
		route       string
		fault       neuracrafttest.Fault
		header      []string
		noKeepAlive bool
		// check, when set, checks the error of a call that is not retried;
		// when nil, the call is retried and succeeds.
		check func(*testing.T, error)
	}{
		{name: "proxy HTML 502 POST", route: post, fault: neuracrafttest.ProxyHTML(502),
			check: func(t *testing.T, err error) {
				notRetriedAPIError(502, 502)(t, err)
				apiErr := requireAPIError(t, err)
				assert.Equal(t, "Bad Gateway", apiErr.Message)
				assert.NoError(t, apiErr.Err)
				assert.True(t, neuracraft.IsRetryable(err), "retryable, but not for a POST")
			}},
		{name: "proxy HTML 502 GET", route: get, fault: neuracrafttest.ProxyHTML(502)},
		{name: "plugin retryable POST", route: post,
			fault: neuracrafttest.Plugin(500, 8102, "Renderer busy", true)},
		{name: "plugin retryable 400 GET", route: get,
			fault: neuracrafttest.Plugin(400, 8203, "Source locked", true)},
		{name: "plugin not retryable GET", route: get,
			fault: neuracrafttest.Plugin(500, 8102, "Template invalid", false),
			check: func(t *testing.T, err error) {
				notRetriedAPIError(500, 8102)(t, err)
				assert.True(t, neuracraft.IsPlugin(err))
				apiErr := requireAPIError(t, err)
				require.NotNil(t, apiErr.RetryHint)
				assert.False(t, *apiErr.RetryHint)
				assert.JSONEq(t, `{"plugin_id":"pdf-export","attempt":1}`, string(apiErr.Details))
			}},
		{name: "plugin not retryable 503 GET", route: get,
			fault: neuracrafttest.Plugin(503, 8301, "Channel archived", false),
			check: notRetriedAPIError(503, 8301)},
		{name: "reset GET", route: get, fault: neuracrafttest.ResetConnection(), noKeepAlive: true},
		{name: "reset POST", route: post, fault: neuracrafttest.ResetConnection(), noKeepAlive: true,
			check: func(t *testing.T, err error) {
				var apiErr *neuracraft.APIError
				assert.False(t, errors.As(err, &apiErr), "no answer, no APIError")
				assert.True(t, labIsCut(err), "a connection error: %v", err)
				assert.True(t, neuracraft.IsRetryable(err), "retryable, but not for a POST")
				assert.ErrorContains(t, err, "POST /v1/pipelines")
			}},
		{name: "reset POST with Idempotency-Key", route: post, fault: neuracrafttest.ResetConnection(),
			header: []string{"Idempotency-Key", "lab-1"}, noKeepAlive: true},
		{name: "reset POST with X-Idempotency-Key", route: post, fault: neuracrafttest.ResetConnection(),
			header: []string{"X-Idempotency-Key", "lab-2"}, noKeepAlive: true},
		{name: "truncated JSON 400 GET", route: get, fault: neuracrafttest.Truncated(400),
			check: func(t *testing.T, err error) {
				notRetriedAPIError(400, 400)(t, err)
				apiErr := requireAPIError(t, err)
				var syntaxErr *json.SyntaxError
				assert.ErrorAs(t, apiErr.Err, &syntaxErr)
				assert.False(t, apiErr.Truncated, "the HTTP body was complete")
				assert.Equal(t, "Bad Request", apiErr.Message)
			}},
		{name: "truncated JSON 502 GET", route: get, fault: neuracrafttest.Truncated(502)},
		{name: "truncated JSON 500 POST", route: post, fault: neuracrafttest.Truncated(500),
			check: notRetriedAPIError(500, 500)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := labServer(t)
			c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry, noKeepAlive: tc.noKeepAlive})
			srv.Fail(tc.route, 1, tc.fault)
			method, body, want := "GET", "", http.StatusOK
			if tc.route == post {
				method, body, want = "POST", `{"name":"lab"}`, http.StatusCreated
			}

			status, err := c.send(t.Context(), method, srv.URL+"/pipelines", body, tc.header...)
			reqs := srv.RequestsFor(tc.route)
			require.NotEmpty(t, reqs)
			assert.Equal(t, tc.fault.Kind(), reqs[0].Fault)
			if tc.check == nil {
				require.NoError(t, err)
				assert.Equal(t, want, status)
				require.Len(t, reqs, 2, "retried once")
				assert.Empty(t, reqs[1].Fault)
				assertSameRequestID(t, reqs)
				return
			}
			require.Error(t, err)
			assert.Len(t, reqs, 1, "not retried")
			tc.check(t, err)
		})
	}
}

// TestFailureLabStreamingUpload: a 100 MiB plugin upload, generated by a
// reader, answered 503 and then accepted, is sent in full twice through
// GetBody without being held in memory.
func TestFailureLabStreamingUpload(t *testing.T) {
	const (
		size     = 100 << 20
		boundary = "failurelab-7d3f9a"
		route    = "POST /plugins/custom"
	)
	srv := labServer(t)
	c := newLabClient(t, labOptions{apiKey: srv.APIKey, retry: fastRetry})
	srv.Fail(route, 1, neuracrafttest.Error(503, "service_unavailable", "Try again"))

	head := "--" + boundary + "\r\n" +
		`Content-Disposition: form-data; name="file"; filename="big.bin"` + "\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	total := int64(len(head)) + size + int64(len(tail))
	var closed, rewound atomic.Int32
	body := func() io.ReadCloser {
		return labCloseCounter{io.MultiReader(strings.NewReader(head), &labUpload{n: size}, strings.NewReader(tail)), &closed}
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/plugins/custom", body())
	require.NoError(t, err)
	req.ContentLength = total
	req.GetBody = func() (io.ReadCloser, error) { rewound.Add(1); return body(), nil }
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("X-API-Key", srv.APIKey)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := c.Do(req)
	require.NoError(t, err)
	var installed struct{ ID, Status string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&installed))
	require.NoError(t, resp.Body.Close())
	runtime.GC()
	runtime.ReadMemStats(&after)

	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "installed", installed.Status)
	assert.Equal(t, int32(1), rewound.Load(), "GetBody calls")
	assert.Equal(t, int32(2), closed.Load(), "bodies closed")
	allocated := after.TotalAlloc - before.TotalAlloc
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, allocated, uint64(8<<20), "bytes allocated while sending 2 x 100 MiB")
	assert.Less(t, grown, int64(8<<20), "heap growth while sending 2 x 100 MiB")
	t.Logf("allocated %d KiB, heap grew %d KiB", allocated>>10, grown>>10)

	reqs := srv.RequestsFor(route)
	require.Len(t, reqs, 2)
	assert.Equal(t, "error", reqs[0].Fault)
	assert.Equal(t, total, reqs[0].BodySize, "the refused attempt's body, in full")
	assert.Empty(t, reqs[1].Fault)
	assertSameRequestID(t, reqs)

	// The accepted attempt's file, as the server counted it.
	var list struct {
		Plugins []struct {
			ID   string
			Size int64
		}
	}
	listReq, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/plugins", nil)
	require.NoError(t, err)
	listReq.Header.Set("X-API-Key", srv.APIKey)
	listResp, err := c.Do(listReq)
	require.NoError(t, err)
	defer listResp.Body.Close()
	require.NoError(t, json.NewDecoder(listResp.Body).Decode(&list))
	var got int64 = -1
	for _, p := range list.Plugins {
		if p.ID == installed.ID {
			got = p.Size
		}
	}
	assert.Equal(t, int64(size), got, "size of the installed file")
}

// TestFailureLabUploadAnsweredEarly: a server that answers 503 to a
// 100 MiB upload before reading it, and closes the connection, gets the
// upload again, in full, from GetBody.
func TestFailureLabUploadAnsweredEarly(t *testing.T) {
	const size = 100 << 20
	var hits atomic.Int32
	var received atomic.Int64
	ts := labRaw(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"service_unavailable","message":"Busy"}}`)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		received.Store(n)
		w.WriteHeader(http.StatusOK)
	})
	var causes []error
	c := newLabClient(t, labOptions{retry: fastRetry,
		onRetry: func(ev neuracraft.RetryEvent) { causes = append(causes, ev.Err) }})
	var closed, rewound atomic.Int32
	req, err := http.NewRequestWithContext(t.Context(), "POST", ts.URL+"/v1/plugins/custom",
		labCloseCounter{&labUpload{n: size}, &closed})
	require.NoError(t, err)
	req.ContentLength = size
	req.GetBody = func() (io.ReadCloser, error) {
		rewound.Add(1)
		return labCloseCounter{&labUpload{n: size}, &closed}, nil
	}

	resp, err := c.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int32(2), hits.Load())
	assert.Equal(t, int64(size), received.Load(), "bytes of the second attempt")
	assert.Equal(t, int32(1), rewound.Load(), "GetBody calls")
	assert.Equal(t, int32(2), closed.Load(), "bodies closed")
	require.Len(t, causes, 1)
	assert.Equal(t, http.StatusServiceUnavailable, requireAPIError(t, causes[0]).StatusCode)
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
