// Tests of Transport.ReturnErrorResponses, of FromResponse on the
// responses it returns, and of WithLastError.

package neuracraft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// errorServer answers every request with status, body and the header
// key-value pairs kv, and counts the requests in hits.
func errorServer(t *testing.T, status int, body []byte, kv ...string) (srv *httptest.Server, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

// responding is a Transport that returns error answers as responses.
func responding(base http.RoundTripper) *Transport {
	return &Transport{Base: base, ReturnErrorResponses: true}
}

// TestErrorResponseNotFound: a 404 comes back as the response the server
// sent, body byte for byte, and FromResponse after the body was drained
// and closed returns the Transport's *APIError, every time the same.
func TestErrorResponseNotFound(t *testing.T) {
	t.Parallel()
	body := readErrorFile(t, "not_found.json")
	srv, hits := errorServer(t, http.StatusNotFound, body, "Content-Type", "application/json", "X-Request-ID", "req_01HF8ZK2")
	client := &http.Client{Transport: responding(nil)}

	resp, err := client.Get(srv.URL + "/v1/pipelines/pipe_9f8e7d")
	require.NoError(t, err)
	assert.Equal(t, "404 Not Found", resp.Status)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "req_01HF8ZK2", resp.Header.Get("X-Request-ID"))
	assert.Equal(t, strconv.Itoa(len(body)), resp.Header.Get("Content-Length"))
	assert.Equal(t, int64(len(body)), resp.ContentLength)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, string(body), string(got), "the body as sent, byte for byte")
	require.NoError(t, resp.Body.Close())

	apiErr := mustAPIError(t, resp)
	assert.Empty(t, cmp.Diff(apiErrorView{StatusCode: 404, Code: 404, Reason: "not_found",
		Message: "Pipeline 'pipe_9f8e7d' not found.", RequestID: "req_01HF8ZK2", Body: string(body)}, viewOf(apiErr)))
	assert.Equal(t, 1, apiErr.Attempts)
	assert.Equal(t, "GET", apiErr.Method)
	assert.Same(t, apiErr, FromResponse(resp), "FromResponse returns the Transport's *APIError, not a new decode")
	assert.True(t, errors.Is(FromResponse(resp), ErrNotFound))
	assert.Equal(t, int32(1), hits.Load())

	// In memory, it reads again after Close, from the start after a Seek.
	seeker, ok := resp.Body.(io.Seeker)
	require.True(t, ok, "the body is an io.Seeker")
	_, err = seeker.Seek(0, io.SeekStart)
	require.NoError(t, err)
	again, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, string(body), string(again))
}

// TestErrorResponseRetries: retries happen as without the option, and only
// the final answer comes back, with what FromResponse says of it.
func TestErrorResponseRetries(t *testing.T) {
	t.Run("429 then 200 returns the 200", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200)}}
			start := time.Now()
			tr := responding(base)
			tr.rand = zero // the retry goes as the cooldown ends
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, time.Second, time.Since(start), "the wait Retry-After asked for")
			assert.Equal(t, 2, base.attempts())
			assert.NoError(t, FromResponse(resp))
		})
	})
	t.Run("POST answered 500 is sent once and returned", func(t *testing.T) {
		t.Parallel()
		base := &scriptBase{steps: []step{answer(500, "X-Request-ID", "req_500"), answer(200)}}
		resp, err := responding(base).RoundTrip(newReq(t, context.Background(), "POST", `{"name":"x"}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		assert.Equal(t, 1, base.attempts(), "a POST is not sent again")
		apiErr := mustAPIError(t, resp)
		assert.Equal(t, "req_500", apiErr.RequestID)
		assert.Contains(t, apiErr.Error(), "not retried: method not idempotent", "the retry notes it has as an error")
	})
	t.Run("503 until the attempts run out returns the last 503", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(503)}}
			tr := responding(base)
			tr.Retry.MaxAttempts = 3
			tr.rand = zero
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, 3, base.attempts())
			apiErr := mustAPIError(t, resp)
			assert.Equal(t, 3, apiErr.Attempts)
			assert.Contains(t, apiErr.Error(), "(request ")
			assert.Contains(t, apiErr.Error(), "3 attempts, not retried: attempts exhausted")
			assert.Equal(t, base.log()[2].requestID, apiErr.RequestID, "the ID every attempt carried")
			assert.Equal(t, apiErr.RequestID, resp.Request.Header.Get("X-Request-ID"), "Request is the request sent")
		})
	})
}

// errNoBody is the error of a GetBody that cannot give the body again.
var errNoBody = errors.New("body gone")

// TestErrorResponseStaysError: what is not an answer, and a Retry-After
// beyond MaxRetryAfter, remains an error with the option set.
func TestErrorResponseStaysError(t *testing.T) {
	t.Parallel()
	reset := errors.New("connection reset by peer")
	tests := []struct {
		name        string
		steps       []step
		first       bool          // a call with a 1 ms deadline goes first
		timeout     time.Duration // of the call's context; 0 means none
		cancelAfter time.Duration // cancels the call's context after this; 0 means never
		noGetBody   bool          // the call is a PUT whose GetBody fails
		check       func(t *testing.T, err error)
	}{
		{
			name:  "network failure",
			steps: []step{{err: reset}},
			check: func(t *testing.T, err error) {
				var reqErr *RequestError
				require.ErrorAs(t, err, &reqErr)
				assert.ErrorIs(t, err, reset)
			},
		},
		{
			name:  "Retry-After beyond MaxRetryAfter",
			steps: []step{answer(429, "Retry-After", "3600")},
			check: func(t *testing.T, err error) {
				apiErr, ok := err.(*APIError)
				require.True(t, ok, "%T %v", err, err)
				assert.Equal(t, time.Hour, apiErr.RetryAfter, "the wait, for the caller to schedule")
				assert.Contains(t, err.Error(), "not retried: Retry-After beyond MaxRetryAfter")
				assert.Nil(t, apiErr.head, "the error keeps no response")
			},
		},
		{
			// The first call meets the 503 and starts a 30 s cooldown;
			// the second cannot wait that long.
			name:    "held back by a cooldown",
			steps:   []step{answer(503, "Retry-After", "30"), answer(200)},
			first:   true,
			timeout: time.Second,
			check: func(t *testing.T, err error) {
				var cooldown *CooldownError
				require.ErrorAs(t, err, &cooldown)
			},
		},
		{
			name:        "wait for a retry ended by the context",
			steps:       []step{answer(503, "Retry-After", "30"), answer(200)},
			cancelAfter: 10 * time.Second,
			check: func(t *testing.T, err error) {
				var apiErr *APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, 503, apiErr.StatusCode)
				assert.ErrorIs(t, err, context.Canceled)
				assert.Nil(t, apiErr.head, "the error keeps no response")
			},
		},
		{
			name:      "body not given again for the retry",
			steps:     []step{answer(503, "Retry-After", "1"), answer(200)},
			noGetBody: true,
			check: func(t *testing.T, err error) {
				var apiErr *APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, 503, apiErr.StatusCode)
				assert.ErrorIs(t, err, errNoBody)
				assert.Nil(t, apiErr.head, "the error keeps no response")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := responding(&scriptBase{steps: tc.steps})
				if tc.first {
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
					cancel()
					require.NoError(t, err, "the first call gets the 503 as a response")
					require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
					resp.Body.Close()
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tc.timeout > 0 {
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				if tc.cancelAfter > 0 {
					time.AfterFunc(tc.cancelAfter, cancel)
				}
				req := newReq(t, ctx, "GET", "")
				if tc.noGetBody {
					req = newReq(t, ctx, "PUT", `{"name":"x"}`)
					req.GetBody = func() (io.ReadCloser, error) { return nil, errNoBody }
				}
				resp, err := tr.RoundTrip(req)
				require.Error(t, err)
				assert.Nil(t, resp)
				tc.check(t, err)
			})
		})
	}
}

// TestErrorResponseBodyCut: a body longer than MaxErrorBody reads back its
// first MaxErrorBody bytes and then an error that says so and wraps the
// *APIError; one cut by the network ends with the network's error.
func TestErrorResponseBodyCut(t *testing.T) {
	t.Parallel()
	t.Run("past MaxErrorBody", func(t *testing.T) {
		t.Parallel()
		body := []byte(`{"error":{"code":"invalid_request","message":"` + strings.Repeat("x", 200) + `"}}`)
		srv, _ := errorServer(t, http.StatusBadRequest, body, "Content-Type", "application/json")
		tr := responding(nil)
		tr.MaxErrorBody = 64
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/v1/pipelines")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, int64(-1), resp.ContentLength, "the length of what the body yields is not known")
		assert.Equal(t, strconv.Itoa(len(body)), resp.Header.Get("Content-Length"), "the header as sent")
		got, err := io.ReadAll(resp.Body)
		assert.Equal(t, string(body[:64]), string(got), "the first MaxErrorBody bytes")
		require.Error(t, err, "never a silent cut")
		assert.Contains(t, err.Error(), "body longer than MaxErrorBody, cut after 64 bytes")
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.True(t, apiErr.Truncated)
		assert.True(t, errors.Is(err, ErrBadRequest))
		assert.Same(t, apiErr, FromResponse(resp))
	})
	t.Run("cut by the network", func(t *testing.T) {
		t.Parallel()
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			body := io.MultiReader(strings.NewReader(`{"error":{"code":"not_fo`), iotest.ErrReader(io.ErrUnexpectedEOF))
			return &http.Response{StatusCode: 404, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(body), ContentLength: 60, Request: req}, nil
		})
		resp, err := responding(base).RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, int64(-1), resp.ContentLength)
		got, err := io.ReadAll(resp.Body)
		assert.Equal(t, `{"error":{"code":"not_fo`, string(got))
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Contains(t, err.Error(), "body incomplete")
		assert.True(t, errors.Is(err, ErrNotFound), "it wraps the *APIError")
	})
}

// TestErrorResponseHTML: a gateway's HTML page comes back as it was sent,
// and FromResponse gives the status's code and text.
func TestErrorResponseHTML(t *testing.T) {
	t.Parallel()
	page := readErrorFile(t, "nginx_502.html")
	srv, hits := errorServer(t, http.StatusBadGateway, page, "Content-Type", "text/html", "Server", "nginx/1.25.3")
	tr := responding(nil)
	tr.Retry.MaxAttempts = 1
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/v1/pipelines")
	require.NoError(t, err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, string(page), string(got))
	assert.Equal(t, "nginx/1.25.3", resp.Header.Get("Server"))
	apiErr := mustAPIError(t, resp)
	assert.Equal(t, Code(502), apiErr.Code)
	assert.Equal(t, "Bad Gateway", apiErr.Message)
	assert.NotEmpty(t, apiErr.RequestID, "the ID the Transport sent")
	assert.Equal(t, int32(1), hits.Load())
}

// wrappedBody stands for the body wrappers of http.Client (with a Timeout)
// and otelhttp, which hide the body the Transport returned.
type wrappedBody struct{ io.ReadCloser }

// TestFromResponseThroughWrappers: FromResponse finds the Transport's
// *APIError when the body was wrapped on the way, and only for the
// response the Transport returned.
func TestFromResponseThroughWrappers(t *testing.T) {
	t.Parallel()
	body := readErrorFile(t, "plugin_8102.json")
	srv, _ := errorServer(t, http.StatusInternalServerError, body, "Content-Type", "application/json", "X-Request-ID", "req_pdf_1")
	wrapping := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := responding(nil).RoundTrip(req)
		if err == nil {
			resp.Body = wrappedBody{resp.Body}
		}
		return resp, err
	})
	clients := map[string]*http.Client{
		"http.Client with a Timeout": {Transport: responding(nil), Timeout: time.Minute},
		"a middleware outside":       {Transport: wrapping},
	}
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest("POST", srv.URL+"/v1/pipelines/pipe_1/run", strings.NewReader("{}"))
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			_, isOurs := resp.Body.(*errorBody)
			require.False(t, isOurs, "the body is wrapped")
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, string(body), string(got))
			require.NoError(t, resp.Body.Close())

			apiErr := mustAPIError(t, resp)
			assert.Equal(t, Code(8102), apiErr.Code, "the body's code, not the status")
			assert.Equal(t, "req_pdf_1", apiErr.RequestID)
			assert.Equal(t, 1, apiErr.Attempts)

			// Another response to the same request is decoded, not taken
			// for this one.
			other := newErrorResponse(http.StatusConflict, `{"error":{"code":"conflict","message":"Busy"}}`)
			other.Request = resp.Request
			otherErr := mustAPIError(t, other)
			assert.NotSame(t, apiErr, otherErr)
			assert.Equal(t, Code(409), otherErr.Code)
		})
	}
}

// TestErrorResponseSuccessUntouched: with the option, a success is the
// Base's response itself, its body unread and unwrapped.
func TestErrorResponseSuccessUntouched(t *testing.T) {
	t.Parallel()
	want := &http.Response{StatusCode: 200, Header: http.Header{}, Body: &recordingBody{r: strings.NewReader("{}")}}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) { want.Request = req; return want, nil })
	resp, err := responding(base).RoundTrip(newReq(t, context.Background(), "GET", ""))
	require.NoError(t, err)
	assert.Same(t, want, resp)
	assert.Zero(t, want.Body.(*recordingBody).read)
}

// TestClientWithErrorResponses: a Client over a Transport that returns
// error answers as responses still returns *APIError for 4xx and 5xx, the
// Transport's own.
func TestClientWithErrorResponses(t *testing.T) {
	t.Parallel()
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	srv.Fail("POST /pipelines", 1, neuracrafttest.Plugin(500, 8102, "PDF Export Plugin: invalid template.", false))
	srv.Fail("POST /pipelines", 1, neuracrafttest.Error(500, "internal", "Try again later."))
	client := &Client{BaseURL: srv.URL, APIKey: srv.APIKey,
		HTTPClient: &http.Client{Transport: responding(nil)}}

	_, err := client.Do(context.Background(), "GET", "/pipelines/pipe_missing", nil, nil)
	apiErr, ok := err.(*APIError)
	require.True(t, ok, "%T %v", err, err)
	assert.Equal(t, Code(404), apiErr.Code)
	assert.Equal(t, "not_found", apiErr.Reason)
	assert.Equal(t, 1, apiErr.Attempts)
	assert.Equal(t, requireOneID(t, srv), apiErr.RequestID)

	_, err = client.Do(context.Background(), "POST", "/pipelines", map[string]string{"name": "x"}, nil)
	_, ok = err.(*APIError)
	require.True(t, ok, "%T %v", err, err)
	assert.ErrorIs(t, err, Code(8102))

	_, err = client.Do(context.Background(), "POST", "/pipelines", map[string]string{"name": "x"}, nil)
	require.ErrorIs(t, err, ErrInternal)
	assert.Contains(t, err.Error(), "not retried: method not idempotent", "the retry notes of the error")

	var out struct{ Items []any }
	_, err = client.Do(context.Background(), "GET", "/pipelines", nil, &out)
	require.NoError(t, err, "a success as before")
}

// requireOneID returns the X-Request-ID of srv's first recorded request.
func requireOneID(t *testing.T, srv *neuracrafttest.Server) string {
	t.Helper()
	reqs := srv.Requests()
	require.NotEmpty(t, reqs)
	return reqs[0].Header.Get("X-Request-ID")
}

// TestWithLastError: the holder has the *APIError of the last answer of a
// call that did not succeed, in both modes, and nil for a call that got
// no answer.
func TestWithLastError(t *testing.T) {
	t.Parallel()
	for _, returnResponses := range []bool{false, true} {
		t.Run("ReturnErrorResponses="+strconv.FormatBool(returnResponses), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				base := &scriptBase{steps: []step{
					answer(404, "X-Request-ID", "req_404"),       // call 1
					answer(429, "Retry-After", "1"), answer(200), // call 2
					{err: errors.New("connection refused")}, // call 3
					answer(503, "Retry-After", "30"),        // call 4, cancelled while it waits
				}}
				tr := &Transport{Base: base, ReturnErrorResponses: returnResponses, Retry: RetryPolicy{MaxAttempts: 2}, rand: zero}
				ctx, last := WithLastError(context.Background())
				call := func(ctx context.Context) {
					resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
					if err == nil {
						resp.Body.Close()
					}
				}
				assert.Nil(t, last(), "nothing before the first call")

				call(ctx)
				first := last()
				require.NotNil(t, first)
				assert.Equal(t, Code(404), first.Code)
				assert.Equal(t, "req_404", first.RequestID)

				call(ctx)
				assert.Same(t, first, last(), "a success leaves it as it was")

				call(ctx)
				assert.Nil(t, last(), "a call without an answer")

				cctx, cancel := context.WithCancel(ctx)
				time.AfterFunc(time.Second, cancel)
				call(cctx)
				require.NotNil(t, last(), "the answer before the cancelled wait")
				assert.Equal(t, Code(503), last().Code)
			})
		})
	}
}

// TestWithLastErrorConcurrent: calls sharing one holder race on nothing,
// and the holder ends with one of their errors.
func TestWithLastErrorConcurrent(t *testing.T) {
	t.Parallel()
	tr := responding(roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 404, Header: http.Header{"X-Request-Id": {req.Header.Get("X-Request-ID")}},
			Body: io.NopCloser(strings.NewReader(`{"error":{"code":"not_found"}}`)), Request: req}, nil
	}))
	ctx, last := WithLastError(context.Background())
	const calls = 50
	ids := make(chan string, calls)
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
			if !assert.NoError(t, err) {
				return
			}
			ids <- FromResponse(resp).(*APIError).RequestID
			_ = last() // read while others write
			resp.Body.Close()
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	require.NotNil(t, last())
	assert.True(t, seen[last().RequestID], "the holder has one of the calls' errors")
}

// TestErrorBodySeek: the body reads like a bytes.Reader over what was
// kept, Seek included, and ends with its end error when it is not whole.
func TestErrorBodySeek(t *testing.T) {
	t.Parallel()
	cut := errors.New("cut")
	b := new(errorBody)
	b.r.Reset([]byte("hello"))
	b.end = cut
	buf := make([]byte, 3)
	n, err := b.Read(buf)
	assert.Equal(t, 3, n)
	assert.NoError(t, err)
	rest, err := io.ReadAll(b)
	assert.Equal(t, "lo", string(rest))
	assert.ErrorIs(t, err, cut)
	pos, err := b.Seek(-2, io.SeekEnd)
	require.NoError(t, err)
	assert.Equal(t, int64(3), pos)
	_, err = b.Seek(-1, io.SeekStart)
	assert.Error(t, err)
	require.NoError(t, b.Close())
	_, err = b.Seek(0, io.SeekStart)
	require.NoError(t, err)
	all, _ := io.ReadAll(b)
	assert.Equal(t, "hello", string(all), "readable after Close")
	assert.True(t, bytes.Equal([]byte("hello"), all))
}

// FuzzErrorResponse: whatever the status, body and cap, a Transport with
// ReturnErrorResponses returns an error answer as a response whose body
// reads back the body's first MaxErrorBody bytes, then io.EOF when that
// was all of it or an error that wraps the *APIError, which FromResponse
// returns.
func FuzzErrorResponse(f *testing.F) {
	f.Add(404, uint8(0), true, readErrorFile(f, "not_found.json"))
	f.Add(502, uint8(16), false, readErrorFile(f, "nginx_502.html"))
	f.Add(500, uint8(1), true, readErrorFile(f, "plugin_8102.json"))
	f.Add(200, uint8(3), true, []byte(`{"id":"pipe_1"}`))
	f.Add(429, uint8(200), false, []byte{})
	f.Add(1<<20, uint8(7), true, []byte("\xff\x00{"))
	f.Fuzz(func(t *testing.T, status int, limit uint8, knownLength bool, body []byte) {
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp := &http.Response{StatusCode: status, Header: http.Header{}, Request: req,
				Body: io.NopCloser(bytes.NewReader(body)), ContentLength: -1}
			if knownLength {
				resp.ContentLength = int64(len(body))
			}
			return resp, nil
		})
		tr := &Transport{Base: base, ReturnErrorResponses: true, MaxErrorBody: int64(limit),
			Retry: RetryPolicy{MaxAttempts: 1}}
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.NoError(t, err)
		defer resp.Body.Close()
		if status < 400 {
			return
		}
		kept := body
		if limit > 0 && len(body) > int(limit) {
			kept = body[:limit]
		}
		got, readErr := io.ReadAll(resp.Body)
		require.Equal(t, kept, append([]byte{}, got...))
		apiErr := mustAPIError(t, resp)
		require.Equal(t, status, apiErr.StatusCode)
		require.Equal(t, string(kept), string(apiErr.Body))
		if len(kept) == len(body) {
			require.NoError(t, readErr)
			require.Equal(t, int64(len(body)), resp.ContentLength)
		} else {
			var wrapped *APIError
			require.ErrorAs(t, readErr, &wrapped)
			require.Same(t, apiErr, wrapped)
			require.Equal(t, int64(-1), resp.ContentLength)
		}
	})
}

// TestErrorResponsesSuccessCostsNothing: a success through a Transport
// with ReturnErrorResponses allocates what it does without (nothing, with
// the caller's request ID); BenchmarkErrorResponses has the times.
func TestErrorResponsesSuccessCostsNothing(t *testing.T) {
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", "req_1")
	allocs := func(tr *Transport) float64 {
		return testing.AllocsPerRun(200, func() {
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
	}
	ok := &http.Response{StatusCode: 200, Body: http.NoBody} // the Base allocates nothing
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return ok, nil })
	assert.Zero(t, allocs(&Transport{Base: base}))
	assert.Zero(t, allocs(&Transport{Base: base, ReturnErrorResponses: true}))
}

// TestErrorResponseEchoedCredential: when the server echoes the request's
// API key, the response returned has the body as the server sent it,
// while the *APIError that FromResponse and WithLastError give hides the
// key, as every error does (hide.go).
func TestErrorResponseEchoedCredential(t *testing.T) {
	t.Parallel()
	const key = "nc_live_ECHOED_0123456789"
	body := []byte(`{"error":{"code":"invalid_api_key","message":"Invalid API key ` + key + `"}}`)
	srv, _ := errorServer(t, http.StatusUnauthorized, body, "Content-Type", "application/json")
	client := &http.Client{Transport: responding(nil)}

	ctx, last := WithLastError(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/pipelines", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", key)
	resp, err := client.Do(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, string(body), string(got), "the caller's answer is the server's")
	assert.Equal(t, int64(len(body)), resp.ContentLength)

	apiErr := FromResponse(resp)
	require.Error(t, apiErr)
	assert.Same(t, last(), apiErr)
	for _, text := range []string{apiErr.Error(), fmt.Sprint(LogValue(apiErr)), string(last().Body), last().Message} {
		assert.NotContains(t, text, key)
	}
	assert.Contains(t, last().Message, "[REDACTED]")
}
