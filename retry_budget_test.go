// Tests of the per-host state a Transport keeps: the retry budget, the
// shared cooldown and its release gap, the bound on hosts, and the errors
// of requests that met them.

package neuracraft

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTransportNetworkErrorNamesRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{{err: syscall.ECONNRESET}}}
		req := newReq(t, context.Background(), "GET", "")
		req.Header.Set("X-Request-ID", "req_local")
		_, err := (&Transport{Base: base}).RoundTrip(req)
		require.Error(t, err)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.True(t, IsRetryable(err))
		assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: "+
			syscall.ECONNRESET.Error()+" (request req_local, attempt 5, not retried: attempts exhausted)", err.Error())
		var reqErr *RequestError
		require.ErrorAs(t, err, &reqErr)
		assert.Equal(t, "req_local", reqErr.RequestID)
		assert.Equal(t, 5, reqErr.Attempts)
	})
}

// TestCooldownErrorWithoutRequestID: a *CooldownError that names no
// request (one built by hand) says nothing of one.
func TestCooldownErrorWithoutRequestID(t *testing.T) {
	cd := &CooldownError{Method: "GET", URL: "https://h/v1/x", Host: "h", Cause: 503, RetryAfter: time.Second}
	assert.Equal(t, "neuracraft: GET /v1/x: held back locally, not sent: h is cooling down after "+
		"503 Service Unavailable, turn in 1s", cd.Error())
}

func TestTransportBudget(t *testing.T) {
	run := func(t *testing.T, tr *Transport, calls int) (attempts, ok int) {
		for range calls {
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			if err == nil {
				ok++
				resp.Body.Close()
			}
		}
		return tr.Base.(*scriptBase).attempts(), ok
	}
	t.Run("outage", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500)}}}
			attempts, ok := run(t, tr, 200)
			assert.Zero(t, ok)
			assert.Equal(t, 204, attempts, "5 for the first call, then one each")
		})
	})
	t.Run("outage without a budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500)}}, DisableBudget: true}
			attempts, _ := run(t, tr, 200)
			assert.Equal(t, 1000, attempts)
		})
	})
	t.Run("a few percent of failures", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var steps []step
			for i := range 2000 {
				if i%20 == 7 { // 5% of attempts fail
					steps = append(steps, answer(503))
				} else {
					steps = append(steps, answer(200))
				}
			}
			tr := &Transport{Base: &scriptBase{steps: steps}}
			_, ok := run(t, tr, 1000)
			assert.Equal(t, 1000, ok)
		})
	})
	t.Run("per host", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500)}}}
			run(t, tr, 20)
			other := newReq(t, context.Background(), "GET", "")
			other.URL.Host = "self-hosted.example"
			_, err := tr.RoundTrip(other)
			require.Error(t, err)
			assert.Equal(t, 5+19+5, tr.Base.(*scriptBase).attempts())
		})
	})
	t.Run("honoured rate limits do not spend it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var steps []step
			for range 10 {
				steps = append(steps, answer(429, "Retry-After", "1"))
			}
			base := &scriptBase{steps: append(steps, answer(200))}
			tr := &Transport{Base: base, DisableCooldown: true} // so that all ten meet a 429
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
					if assert.NoError(t, err) {
						resp.Body.Close()
					}
				})
			}
			wg.Wait()
			assert.Equal(t, 20, base.attempts())
		})
	})
	t.Run("a denied retry returns the real error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := &Transport{Base: &scriptBase{steps: []step{answer(500, "X-Request-ID", "req_9")}}}
			run(t, tr, 5)
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "req_9", apiErr.RequestID)
			assert.Equal(t, 1, apiErr.Attempts)
		})
	})
}

func TestTransportHostsBounded(t *testing.T) {
	tr := &Transport{}
	h := tr.tableForUpdate()
	for i := range maxHosts + 10 {
		addFailing(h, fmt.Sprintf("h%d.example", i), time.Now())
	}
	assert.Equal(t, maxHosts, h.len(), "past maxHosts, the oldest hosts are dropped")
}
