// Tests of both generated clients against neuracrafttest, in both modes of
// the Transport: errors (WrapClient's default) and ReturnErrorResponses.

package main

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/examples/openapi/oapiclient"
	"github.com/neuracraft/neuracraft-go/examples/openapi/ogenclient"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// result is what one generated call returned, in the terms both
// generators share.
type result struct {
	Status    int    // of the typed result; 0 when the call returned an error
	Code      string // the error envelope's code in the typed result, as text
	RequestID string // the X-Request-ID header in the typed error result
	Err       error  `cmp:"-"`
	HTTP      *http.Response
}

// operations are a generated client's four calls, reduced to results.
type operations struct {
	getPipeline    func(ctx context.Context, id string) result
	createPipeline func(ctx context.Context, name string) result
	listPipelines  func(ctx context.Context) result
	startRun       func(ctx context.Context, id string) result
}

// generators builds each generator's client on hc.
var generators = []struct {
	name string
	new  func(t *testing.T, srv *neuracrafttest.Server, hc *http.Client) operations
}{
	{"oapi-codegen", newOapiOperations},
	{"ogen", newOgenOperations},
}

func newOapiOperations(t *testing.T, srv *neuracrafttest.Server, hc *http.Client) operations {
	c, err := newOapiClient(srv.URL, srv.APIKey, hc)
	require.NoError(t, err)
	return operations{
		getPipeline: func(ctx context.Context, id string) result {
			r, err := c.GetPipelineWithResponse(ctx, id)
			if err != nil {
				return result{Err: err}
			}
			return oapiResult(r.HTTPResponse, r.JSON4XX, r.JSON5XX)
		},
		createPipeline: func(ctx context.Context, name string) result {
			r, err := c.CreatePipelineWithResponse(ctx, oapiclient.NewPipeline{Name: name})
			if err != nil {
				return result{Err: err}
			}
			return oapiResult(r.HTTPResponse, r.JSON4XX, r.JSON5XX)
		},
		listPipelines: func(ctx context.Context) result {
			r, err := c.ListPipelinesWithResponse(ctx, nil)
			if err != nil {
				return result{Err: err}
			}
			return oapiResult(r.HTTPResponse, r.JSON4XX, r.JSON5XX)
		},
		startRun: func(ctx context.Context, id string) result {
			r, err := c.StartRunWithResponse(ctx, id, oapiclient.StartRunJSONRequestBody{})
			if err != nil {
				return result{Err: err}
			}
			return oapiResult(r.HTTPResponse, r.JSON4XX, r.JSON5XX)
		},
	}
}

// oapiResult is the result of an oapi-codegen call that returned resp,
// with its 4XX and 5XX envelopes (nil when the body was not JSON).
func oapiResult(resp *http.Response, json4xx, json5xx *oapiclient.Error) result {
	r := result{Status: resp.StatusCode, HTTP: resp}
	if env := json4xx; env != nil || json5xx != nil {
		if env == nil {
			env = json5xx
		}
		if n, err := env.Error.Code.AsErrorErrorCode0(); err == nil {
			r.Code = strconv.Itoa(n)
		} else if s, err := env.Error.Code.AsErrorErrorCode1(); err == nil {
			r.Code = s
		}
	}
	if resp.StatusCode >= 400 {
		r.RequestID = resp.Header.Get("X-Request-ID")
	}
	return r
}

func newOgenOperations(t *testing.T, srv *neuracrafttest.Server, hc *http.Client) operations {
	c, err := newOgenClient(srv.URL, srv.APIKey, hc)
	require.NoError(t, err)
	return operations{
		getPipeline: func(ctx context.Context, id string) result {
			return ogenResult(c.GetPipeline(ctx, ogenclient.GetPipelineParams{ID: id}))
		},
		createPipeline: func(ctx context.Context, name string) result {
			return ogenResult(c.CreatePipeline(ctx, &ogenclient.NewPipeline{Name: name}))
		},
		listPipelines: func(ctx context.Context) result {
			return ogenResult(c.ListPipelines(ctx, ogenclient.ListPipelinesParams{}))
		},
		startRun: func(ctx context.Context, id string) result {
			return ogenResult(c.StartRun(ctx, ogenclient.StartRunReq{}, ogenclient.StartRunParams{ID: id}))
		},
	}
}

// ogenResult is the result of an ogen call. ogen's success types do not
// say their status: each is the one openapi.yaml declares for it.
func ogenResult(res any, err error) result {
	if err != nil {
		return result{Err: err}
	}
	switch res := res.(type) {
	case *ogenclient.ErrorStatusCodeWithHeaders:
		r := result{Status: res.StatusCode, RequestID: res.XRequestID.Value}
		if code := res.Response.Error.Code; code.IsInt() {
			r.Code = strconv.Itoa(code.Int)
		} else {
			r.Code = code.String
		}
		return r
	case *ogenclient.Pipeline, *ogenclient.PipelineList:
		return result{Status: http.StatusOK}
	case *ogenclient.RunStarted:
		return result{Status: http.StatusAccepted}
	}
	return result{Err: errors.New("unexpected result type")}
}

// want is what a case expects of one generator in one mode.
type want struct {
	status   int             // of the typed result; 0: the call returns an error
	code     string          // the envelope's code in the typed result
	apiCode  neuracraft.Code // of the *APIError of the last answer; 0: none (a success)
	attempts int             // requests the fake received
}

// TestGeneratedClients runs each case on both generated clients in both
// modes of the Transport, and checks what the generated call returns and
// that the *APIError of the last answer is reachable: through the call's
// error by errors.As (errors), through FromResponse on oapi-codegen's
// HTTPResponse, and through WithLastError for ogen, which returns no
// response (ReturnErrorResponses). Each case runs in a synctest bubble, so
// the waits of the retries take no real time and can be asserted exactly;
// its http.Transport keeps no idle connection, whose reader would keep
// the bubble's clock from moving.
func TestGeneratedClients(t *testing.T) {
	t.Parallel()
	const pluginMessage = "PDF Export Plugin: Failed to generate document due to invalid template."
	cases := []struct {
		name    string
		route   string // the route the call takes, and of the fault
		fault   neuracrafttest.Fault
		faults  int
		call    func(ctx context.Context, ops operations, pipelineID string) result
		elapsed time.Duration // the virtual time the call takes
		jitter  bool          // elapsed is the most it takes: the backoffs are random

		errors, responses want
		ogenResponses     *want // when ogen differs from oapi-codegen
	}{
		{
			name:      "success",
			route:     "GET /pipelines/{id}",
			call:      func(ctx context.Context, ops operations, id string) result { return ops.getPipeline(ctx, id) },
			errors:    want{status: 200, attempts: 1},
			responses: want{status: 200, attempts: 1},
		},
		{
			name:  "404",
			route: "GET /pipelines/{id}",
			call: func(ctx context.Context, ops operations, _ string) result {
				return ops.getPipeline(ctx, "pipe_missing")
			},
			errors:    want{apiCode: 404, attempts: 1},
			responses: want{status: 404, code: "not_found", apiCode: 404, attempts: 1},
		},
		{
			name:      "429 then 200",
			route:     "GET /pipelines/{id}",
			fault:     neuracrafttest.RateLimit("1"),
			faults:    1,
			call:      func(ctx context.Context, ops operations, id string) result { return ops.getPipeline(ctx, id) },
			elapsed:   time.Second + 50*time.Millisecond, // Retry-After, and at most a gap of the pace (the first held request waits a random part of one)
			jitter:    true,
			errors:    want{status: 200, attempts: 2},
			responses: want{status: 200, attempts: 2},
		},
		{
			name:      "500 on POST, sent once",
			route:     "POST /pipelines",
			fault:     neuracrafttest.Error(500, "internal", "Try again later."),
			faults:    1,
			call:      func(ctx context.Context, ops operations, _ string) result { return ops.createPipeline(ctx, "etl") },
			errors:    want{apiCode: 500, attempts: 1},
			responses: want{status: 500, code: "internal", apiCode: 500, attempts: 1},
		},
		{
			name:      "plugin 8102 as 500",
			route:     "POST /pipelines/{id}/run",
			fault:     neuracrafttest.Plugin(500, 8102, pluginMessage, false),
			faults:    1,
			call:      func(ctx context.Context, ops operations, id string) result { return ops.startRun(ctx, id) },
			errors:    want{apiCode: 8102, attempts: 1},
			responses: want{status: 500, code: "8102", apiCode: 8102, attempts: 1},
		},
		{
			name:      "reset GET retried",
			route:     "GET /pipelines",
			fault:     neuracrafttest.ResetConnection(),
			faults:    1,
			call:      func(ctx context.Context, ops operations, _ string) result { return ops.listPipelines(ctx) },
			elapsed:   500 * time.Millisecond, // the first backoff's ceiling
			jitter:    true,
			errors:    want{status: 200, attempts: 2},
			responses: want{status: 200, attempts: 2},
		},
		{
			// Retried like any 502 of a GET, until the attempts run out.
			// The page is HTML, which openapi.yaml does not declare:
			// oapi-codegen returns the response without an envelope, ogen
			// an error of its own (not ours: WithLastError has ours).
			name:          "HTML 502",
			route:         "GET /pipelines/{id}",
			fault:         neuracrafttest.ProxyHTML(502),
			faults:        5,
			call:          func(ctx context.Context, ops operations, id string) result { return ops.getPipeline(ctx, id) },
			elapsed:       7500 * time.Millisecond, // 0.5 + 1 + 2 + 4 s, the backoffs' ceilings
			jitter:        true,
			errors:        want{apiCode: 502, attempts: 5},
			responses:     want{status: 502, apiCode: 502, attempts: 5},
			ogenResponses: &want{apiCode: 502, attempts: 5},
		},
	}
	for _, gen := range generators {
		for _, responses := range []bool{false, true} {
			mode := "errors"
			if responses {
				mode = "ReturnErrorResponses"
			}
			for _, tc := range cases {
				t.Run(gen.name+"/"+mode+"/"+tc.name, func(t *testing.T) {
					t.Parallel()
					w := tc.errors
					if responses {
						w = tc.responses
						if gen.name == "ogen" && tc.ogenResponses != nil {
							w = *tc.ogenResponses
						}
					}
					srv := neuracrafttest.NewServer()
					defer srv.Close()
					pipelineID := seedPipeline(t, srv)
					if tc.faults > 0 {
						srv.Fail(tc.route, tc.faults, tc.fault)
					}
					synctest.Test(t, func(t *testing.T) {
						ops := gen.new(t, srv, newHTTPClient(responses))
						ctx, lastErr := neuracraft.WithLastError(context.Background())
						start := time.Now()
						got := tc.call(ctx, ops, pipelineID)
						if tc.jitter {
							assert.LessOrEqual(t, time.Since(start), tc.elapsed, "virtual time of the call")
						} else {
							assert.Equal(t, tc.elapsed, time.Since(start), "virtual time of the call")
						}
						checkResult(t, srv, tc.route, w, got, lastErr, responses)
					})
				})
			}
		}
	}
}

// checkResult checks got, what a generated call returned, against w, and
// that the call's *APIError is reachable where its mode puts it.
func checkResult(t *testing.T, srv *neuracrafttest.Server, route string, w want, got result, lastErr func() *neuracraft.APIError, responses bool) {
	t.Helper()
	sent := srv.RequestsFor(route)
	require.Len(t, sent, w.attempts, "requests the fake received")
	sentID := sent[len(sent)-1].Header.Get("X-Request-ID")
	require.NotEmpty(t, sentID)

	if w.status == 0 {
		require.Error(t, got.Err, "the generated call returns an error")
	} else {
		require.NoError(t, got.Err, "the generated call returns a typed result")
	}
	assert.Equal(t, w.status, got.Status, "status of the typed result")
	assert.Equal(t, w.code, got.Code, "envelope code of the typed result")

	if w.apiCode == 0 {
		assert.Nil(t, lastErr(), "a success leaves WithLastError empty")
		return
	}
	apiErr := lastErr()
	require.NotNil(t, apiErr, "WithLastError has the *APIError")
	assert.Equal(t, w.apiCode, apiErr.Code)
	assert.Equal(t, sentID, apiErr.RequestID, "the ID of the last attempt")
	assert.Equal(t, w.attempts, apiErr.Attempts)

	var viaErr *neuracraft.APIError
	switch {
	case !responses:
		require.ErrorAs(t, got.Err, &viaErr, "errors.As through the generator's wrapping")
		assert.Same(t, apiErr, viaErr)
	case got.HTTP != nil: // oapi-codegen hands the response back, its body read
		require.ErrorAs(t, neuracraft.FromResponse(got.HTTP), &viaErr)
		assert.Same(t, apiErr, viaErr, "FromResponse returns the Transport's *APIError")
		assert.Equal(t, sentID, got.RequestID, "the typed result's X-Request-ID")
	default: // ogen: only WithLastError
		assert.False(t, errors.As(got.Err, &viaErr), "ogen's own error")
		if got.Status != 0 {
			assert.Equal(t, sentID, got.RequestID, "the typed result's X-Request-ID")
		}
	}
}

// newHTTPClient returns the client of the generated clients: WrapClient's
// in the default mode, or WrapClient over a Transport with
// ReturnErrorResponses. Its http.Transport keeps no idle connection (see
// TestGeneratedClients).
func newHTTPClient(responses bool) *http.Client {
	base := &http.Transport{DisableKeepAlives: true}
	if !responses {
		return neuracraft.WrapClient(&http.Client{Transport: base})
	}
	return neuracraft.WrapClient(&http.Client{Transport: &neuracraft.Transport{Base: base, ReturnErrorResponses: true}})
}

// seedPipeline creates a pipeline on srv, through the SDK's own client,
// forgets the requests that took, and returns the pipeline's ID.
func seedPipeline(t *testing.T, srv *neuracrafttest.Server) string {
	t.Helper()
	client := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}
	var p struct{ ID string }
	_, err := client.Do(context.Background(), "POST", "/pipelines", map[string]string{"name": "nightly"}, &p)
	require.NoError(t, err)
	require.NotEmpty(t, p.ID)
	srv.ResetRequests()
	return p.ID
}

// TestResultShapes pins what the generated clients' types hold, as the
// cases above read them: a change of generator output fails here first.
func TestResultShapes(t *testing.T) {
	t.Parallel()
	var oapiErr oapiclient.Error
	require.NoError(t, oapiErr.Error.Code.FromErrorErrorCode0(8102))
	resp := &http.Response{StatusCode: 500, Header: http.Header{"X-Request-Id": {"req_1"}}}
	assert.Empty(t, cmp.Diff(result{Status: 500, Code: "8102", RequestID: "req_1", HTTP: resp},
		oapiResult(resp, nil, &oapiErr)))

	ogenErr := &ogenclient.ErrorStatusCodeWithHeaders{StatusCode: 404,
		XRequestID: ogenclient.NewOptString("req_2"),
		Response:   ogenclient.Error{Error: ogenclient.ErrorError{Code: ogenclient.NewStringErrorErrorCode("not_found")}}}
	assert.Empty(t, cmp.Diff(result{Status: 404, Code: "not_found", RequestID: "req_2"}, ogenResult(ogenErr, nil)))
}
