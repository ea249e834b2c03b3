// Tests of Transport and WrapClient (transport.go): what passes through a
// Transport untouched, WrapClient's copy of a client, an error through
// http.Client, a request without a URL, and concurrent use.
// transport_requestid_test.go has the request IDs, transport_lab*_test.go
// the failure lab, transport_bench_test.go the benchmarks.

package neuracraft

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTransportSuccessPassesThrough(t *testing.T) {
	t.Parallel()
	body := &closeTracker{Reader: strings.NewReader(`{"id":"pipe_1"}`)}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: req}, nil
	})
	tr := &Transport{Base: base}
	req := newReq(t, context.Background(), "GET", "")
	req.Header.Set("Accept", "application/json")
	before := req.Header.Clone()

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Same(t, body, resp.Body, "the success body must reach the caller unread and unwrapped")
	assert.Equal(t, before, req.Header, "the caller's request must not be modified")
	assert.Len(t, resp.Request.Header.Get("X-Request-ID"), 32)
	assert.Equal(t, "application/json", resp.Request.Header.Get("Accept"))
}

func TestWrapClient(t *testing.T) {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	redirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := &http.Transport{}
	c := &http.Client{Transport: base, Timeout: 7 * time.Second, Jar: jar, CheckRedirect: redirect}

	w := WrapClient(c)
	require.NotSame(t, c, w)
	assert.Same(t, base, c.Transport, "the original client is not modified")
	tr, ok := w.Transport.(*Transport)
	require.True(t, ok)
	assert.Same(t, base, tr.Base)
	assert.Equal(t, 7*time.Second, w.Timeout)
	assert.Same(t, jar, w.Jar)
	assert.NotNil(t, w.CheckRedirect)

	again := WrapClient(w)
	assert.Same(t, tr, again.Transport, "wrapping twice does not stack transports")

	d := WrapClient(nil)
	dt, ok := d.Transport.(*Transport)
	require.True(t, ok)
	assert.Nil(t, dt.Base, "nil Base means http.DefaultTransport")
}

func TestTransportErrorThroughClient(t *testing.T) {
	t.Parallel()
	base := &scriptBase{steps: []step{answer(404, "X-Request-ID", "req_abc123")}}
	c := WrapClient(&http.Client{Transport: base})
	_, err := c.Get("https://api.neuracraft.com/v1/pipelines/pipe_1?token=t_secret")
	var urlErr *url.Error
	require.ErrorAs(t, err, &urlErr)
	assert.ErrorIs(t, err, ErrNotFound)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: scripted (request req_abc123)", apiErr.Error())
	assert.NotContains(t, apiErr.URL, "t_secret")
}

func TestTransportNoRequestURL(t *testing.T) {
	t.Parallel()
	body := &closeTracker{Reader: strings.NewReader("x")}
	_, err := (&Transport{}).RoundTrip(&http.Request{Method: "POST", Body: body})
	require.Error(t, err)
	assert.True(t, body.closed)
}

func TestTransportConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var steps []step
		for i := range 400 {
			if i%20 == 0 { // 5%: well within the retry budget
				steps = append(steps, answer(503))
			} else {
				steps = append(steps, answer(200))
			}
		}
		base := &scriptBase{steps: steps}
		tr := &Transport{Base: base}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				for range 5 {
					resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
					if assert.NoError(t, err) {
						resp.Body.Close()
					}
				}
			})
		}
		wg.Wait()
	})
}
