// Tests of one call through a Transport (call.go): a rewind of the body
// that fails, a wait cut short by the caller, the bodies sent again
// (GetBody) or closed, and a Base that breaks the RoundTripper contract.

package neuracraft

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRewindFailureEndsCall: when GetBody fails, the call ends there with
// the last failure, and neither the budget nor the breaker sees a failure
// that the server did not send.
func TestRewindFailureEndsCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503), answer(200)}}
		req := newReq(t, context.Background(), "POST", "x")
		rewinds := 0
		req.GetBody = func() (io.ReadCloser, error) { rewinds++; return nil, errors.New("gone") }
		tr := &Transport{Base: base}
		_, err := tr.RoundTrip(req)
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.Equal(t, 1, rewinds)
		assert.Equal(t, 1, base.attempts())
		s := tr.table().lookup("api.neuracraft.com")
		require.NotNil(t, s)
		assert.Equal(t, 9.0, s.tokens, "one token, for the one 503")
	})
}

func TestTransportCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503, "Retry-After", "2")}}
		tr := &Transport{Base: base}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorIs(t, err, ErrUnavailable, "the last failure stays reachable")
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 1, apiErr.Attempts)
	})
}

func TestTransportBodies(t *testing.T) {
	t.Run("rewound with GetBody on every retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(503), answer(503), answer(201)}}
			_, err := (&Transport{Base: base}).RoundTrip(newReq(t, context.Background(), "POST", `{"name":"p"}`))
			require.NoError(t, err)
			for _, s := range base.log() {
				assert.Equal(t, `{"name":"p"}`, s.body)
			}
		})
	})
	t.Run("not retried without GetBody, and closed", func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503), answer(200)}}
		req := newReq(t, context.Background(), "PUT", "")
		body := &closeTracker{Reader: strings.NewReader("data")}
		req.Body, req.GetBody = body, nil
		_, err := (&Transport{Base: base}).RoundTrip(req)
		assert.ErrorIs(t, err, ErrUnavailable)
		assert.Equal(t, 1, base.attempts())
		assert.True(t, body.closed)
	})
	t.Run("closed when held back by a cooldown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "30"), answer(200)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			req := newReq(t, ctx, "POST", "")
			body := &closeTracker{Reader: strings.NewReader("data")}
			req.Body = body
			_, err = tr.RoundTrip(req)
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.True(t, body.closed)
		})
	})
	t.Run("GetBody failure returns the last error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(503), answer(200)}}
			req := newReq(t, context.Background(), "POST", "x")
			req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
			_, err := (&Transport{Base: base}).RoundTrip(req)
			assert.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorContains(t, err, "gone")
			assert.Equal(t, 1, base.attempts())
		})
	})
}

// TestNilResponseFromBase: a Base that breaks the RoundTripper contract
// with (nil, nil) gets an error naming it, not a panic, and no retry.
func TestNilResponseFromBase(t *testing.T) {
	t.Parallel()
	calls := 0
	tr := &Transport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls++
		return nil, nil
	})}
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines", nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	assert.Nil(t, resp)
	require.Error(t, err)
	assert.ErrorIs(t, err, errNilResponse)
	assert.Contains(t, err.Error(), "neuracraft: GET /v1/pipelines: the Base, neuracraft.roundTripFunc: RoundTripper returned a nil *http.Response with a nil error (request ")
	assert.False(t, IsRetryable(err))
	assert.Equal(t, 1, calls)

	// Through http.Client too.
	_, err = (&http.Client{Transport: tr}).Do(req)
	require.ErrorIs(t, err, errNilResponse)
}

// TestResponseWithErrorFromBase: a Base that returns a response and an
// error has the response's body closed.
func TestResponseWithErrorFromBase(t *testing.T) {
	t.Parallel()
	body := &closeTracker{Reader: strings.NewReader("x")}
	tr := &Transport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: body}, errors.New("both")
	}), Retry: RetryPolicy{MaxAttempts: 1}}
	req, err := http.NewRequestWithContext(context.Background(), "GET", "https://api.neuracraft.com/v1/x", nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	assert.Nil(t, resp)
	require.Error(t, err)
	assert.True(t, body.closed)
}
