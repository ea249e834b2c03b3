package neuracrafttest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestEnvelopeFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name       string
		fault      Fault
		kind       string
		status     int
		body       map[string]any
		retryAfter string
	}{
		{
			name: "rate limit", fault: RateLimit("2"), kind: "rate_limit", status: 429, retryAfter: "2",
			body: envelopeOf("rate_limit_exceeded", "Rate limit exceeded. Retry after the delay in the Retry-After header."),
		},
		{
			name: "rate limit with date", fault: RateLimit("Wed, 21 Oct 2015 07:28:00 GMT"), kind: "rate_limit", status: 429,
			retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT",
			body:       envelopeOf("rate_limit_exceeded", "Rate limit exceeded. Retry after the delay in the Retry-After header."),
		},
		{
			name: "rate limit without Retry-After", fault: RateLimit(""), kind: "rate_limit", status: 429,
			body: envelopeOf("rate_limit_exceeded", "Rate limit exceeded. Retry after the delay in the Retry-After header."),
		},
		{
			name: "string code", fault: Error(404, "not_found", "Resource not found"), kind: "error", status: 404,
			body: envelopeOf("not_found", "Resource not found"),
		},
		{
			name: "int code", fault: Error(500, 8102, "PDF Export Plugin: invalid template."), kind: "error", status: 500,
			body: envelopeOf(float64(8102), "PDF Export Plugin: invalid template."),
		},
		{
			name: "malformed code", fault: Error(400, []int{1}, ""), kind: "error", status: 400,
			body: envelopeOf([]any{float64(1)}, ""),
		},
		{
			name: "503 with Retry-After", fault: Error(503, "service_unavailable", "Maintenance").WithHeader("Retry-After", "30"),
			kind: "error", status: 503, retryAfter: "30",
			body: envelopeOf("service_unavailable", "Maintenance"),
		},
		{
			name:  "plugin",
			fault: Plugin(500, 8102, "PDF Export Plugin: Failed to generate document due to invalid template.", true),
			kind:  "plugin", status: 500,
			body: map[string]any{"error": map[string]any{
				"code":      float64(8102),
				"message":   "PDF Export Plugin: Failed to generate document due to invalid template.",
				"retryable": true,
				"details":   map[string]any{"plugin_id": "pdf-export", "attempt": float64(1)},
			}},
		},
		{
			name:  "unknown plugin",
			fault: Plugin(422, 8901, "Custom plugin failed", false),
			kind:  "plugin", status: 422,
			body: map[string]any{"error": map[string]any{
				"code":      float64(8901),
				"message":   "Custom plugin failed",
				"retryable": false,
				"details":   map[string]any{"plugin_id": "plugin-901", "attempt": float64(1)},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.kind, tt.fault.Kind())
			e.srv.ResetRequests()
			e.srv.Fail("GET /pipelines/{id}", 1, tt.fault)
			r := e.do("GET", "/pipelines/pipe_1", nil)
			require.Equal(t, tt.status, r.status)
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
			require.Equal(t, tt.retryAfter, r.header.Get("Retry-After"))
			_, sent := r.header["Retry-After"]
			require.Equal(t, tt.retryAfter != "", sent)
			require.Empty(t, cmp.Diff(tt.body, decode(t, r.body)))

			got := e.srv.Requests()
			require.Len(t, got, 1)
			require.Equal(t, tt.kind, got[0].Fault)
			require.Equal(t, "GET /pipelines/{id}", got[0].Route)
		})
	}
}

func TestProxyHTML(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, status := range []int{502, 503, 504} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			e.srv.Fail("*", 1, ProxyHTML(status))
			r := e.do("GET", "/plugins", nil)
			require.Equal(t, status, r.status)
			require.Equal(t, "text/html", r.header.Get("Content-Type"))
			require.Contains(t, string(r.body), "<title>"+strconv.Itoa(status)+" "+http.StatusText(status)+"</title>")
			require.False(t, json.Valid(r.body))
		})
	}
}

func TestTruncated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		status int
		full   []byte
	}{
		{500, errorBody("internal_error", "Internal Server Error")},
		{503, errorBody("service_unavailable", "Service Unavailable")},
		{200, successDocument},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			e.srv.Fail("GET /plugins", 1, Truncated(tt.status))
			r := e.do("GET", "/plugins", nil)
			require.Equal(t, tt.status, r.status)
			require.Equal(t, strconv.Itoa(len(r.body)), r.header.Get("Content-Length"))
			require.NotEmpty(t, r.body)
			require.Less(t, len(r.body), len(tt.full))
			require.True(t, strings.HasPrefix(string(tt.full), string(r.body)))
			require.False(t, json.Valid(r.body))
		})
	}
}

func TestResetConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Without keep-alives every request has its own connection, so the
	// client's transport cannot retry a GET on a fresh one.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	e.srv.Fail("POST /pipelines", 1, ResetConnection().WithHeader("X-Ignored", "1"))

	req, err := http.NewRequest("POST", e.srv.URL+"/pipelines", strings.NewReader(`{"name":"a"}`))
	require.NoError(t, err)
	req.Header.Set("X-API-Key", e.srv.APIKey)
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)

	got := e.srv.Requests()
	require.Len(t, got, 1)
	require.Equal(t, "reset_connection", got[0].Fault)
	require.Equal(t, `{"name":"a"}`, string(got[0].Body))
	require.Equal(t, float64(0), decode(t, e.do("GET", "/pipelines", nil).body)["total"])
}

func TestSlowBody(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		fault    Fault
		status   int
		size     int
		validErr bool // whether the body is a valid error envelope
	}{
		{"success body", SlowBody(200, 10_000, 1000, time.Millisecond), 200, 10_000, false},
		{"error envelope", SlowBody(503, 5000, 512, 0), 503, 5000, true},
		{"uneven chunks", SlowBody(500, 1001, 100, 0), 500, 1001, true},
		{"one chunk", SlowBody(429, 300, 1<<20, 0), 429, 300, true},
		{"smaller than the envelope", SlowBody(500, 10, 3, 0), 500, 10, false},
		{"empty", SlowBody(204, 0, 1, time.Hour), 204, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.srv.Fail("GET /plugins", 1, tt.fault)
			r := e.do("GET", "/plugins", nil)
			require.Equal(t, tt.status, r.status)
			require.Len(t, r.body, tt.size)
			if tt.validErr {
				require.Equal(t, defaultCode(tt.status), decode(t, r.body)["error"].(map[string]any)["code"])
			}
			if tt.status == 200 {
				require.True(t, json.Valid(r.body))
			}
		})
	}
}

// TestStall checks that a stalled response sends its headers, holds its body
// until the client gives up, and does not keep Close waiting.
func TestStall(t *testing.T) {
	srv := NewServer()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	srv.Fail("GET /runs/{run_id}", 2, Stall(200).WithHeader("X-Stalled", "yes"))

	get := func(ctx context.Context) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/runs/run_1", nil)
		require.NoError(t, err)
		req.Header.Set("X-API-Key", srv.APIKey)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "yes", resp.Header.Get("X-Stalled"))
		require.NotEmpty(t, resp.Header.Get("X-Request-ID"))
		return resp
	}

	// The client abandons the first stalled response.
	ctx, cancel := context.WithCancel(context.Background())
	resp := get(ctx)
	require.Len(t, srv.RequestsFor("GET /runs/{run_id}"), 1, "a stalled request is recorded")
	cancel()
	_, err := io.ReadAll(resp.Body)
	require.ErrorIs(t, err, context.Canceled)
	resp.Body.Close()

	// The server is closed under the second.
	resp = get(context.Background())
	defer resp.Body.Close()
	closeReturns(t, srv)
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err)
}

// TestSlowBodyClose checks that Close does not wait for a slow body to
// finish.
func TestSlowBodyClose(t *testing.T) {
	srv := NewServer()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	srv.Fail("*", 1, SlowBody(200, 1<<20, 1, time.Hour))

	req, err := http.NewRequest("GET", srv.URL+"/plugins", nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, int64(1<<20), resp.ContentLength)

	closeReturns(t, srv)
	_, err = io.ReadAll(resp.Body)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestWithHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := Error(500, "internal_error", "boom")
	a := base.WithHeader("X-A", "1")
	b := a.WithHeader("X-A", "2").WithHeader("Content-Type", "text/plain")
	require.Nil(t, base.header, "WithHeader modified its receiver")
	require.Equal(t, []string{"1"}, a.header.Values("X-A"), "WithHeader modified its receiver")

	e.srv.Fail("GET /plugins", 1, b)
	r := e.do("GET", "/plugins", nil)
	require.Equal(t, []string{"1", "2"}, r.header.Values("X-A"))
	require.Equal(t, "text/plain", r.header.Get("Content-Type"))
	require.Empty(t, cmp.Diff(envelopeOf("internal_error", "boom"), decode(t, r.body)))
}

func TestFaultConstructorPanics(t *testing.T) {
	tests := []struct {
		name string
		call func()
	}{
		{"Error status too low", func() { Error(199, "x", "y") }},
		{"Error status too high", func() { Error(600, "x", "y") }},
		{"Error unencodable code", func() { Error(500, func() {}, "y") }},
		{"Plugin status", func() { Plugin(0, 8102, "y", true) }},
		{"ProxyHTML status", func() { ProxyHTML(101) }},
		{"Truncated status", func() { Truncated(-1) }},
		{"Stall status", func() { Stall(1000) }},
		{"SlowBody status", func() { SlowBody(99, 1, 1, 0) }},
		{"SlowBody negative size", func() { SlowBody(200, -1, 1, 0) }},
		{"SlowBody zero chunk", func() { SlowBody(200, 1, 0, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Panics(t, tt.call)
		})
	}
}

// TestResetConnectionDeterministic: on reused keep-alive connections,
// where net/http sends an idempotent GET again by itself when a
// connection dies before any byte of the answer, the fault gives one
// outcome on every run: the server records one request, and the caller
// gets an error matching io.ErrUnexpectedEOF, not the next answer.
func TestResetConnectionDeterministic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const runs = 200
	var reused int
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			reused++
		}
	}}
	for i := range runs {
		require.Equal(t, http.StatusOK, e.do("GET", "/pipelines", nil).status) // a connection to reuse
		e.srv.Fail("GET /pipelines", 1, ResetConnection())
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", e.srv.URL+"/pipelines", nil)
		require.NoError(t, err)
		req.Header.Set("X-API-Key", e.srv.APIKey)
		resp, err := e.hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "run %d: got status %v", i, resp)
		got := e.srv.Requests()
		require.Len(t, got, 2*(i+1), "run %d: net/http sent the request again", i)
		require.Equal(t, "reset_connection", got[len(got)-1].Fault)
	}
	require.Equal(t, runs, reused, "every faulted request went over a reused connection")
}
