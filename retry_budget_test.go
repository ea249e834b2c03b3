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

	"github.com/google/go-cmp/cmp"
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

func TestTransportCooldown(t *testing.T) {
	t.Run("holds every request until it ends, then lets them go in order", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "2"), answer(200)}}
			tr := &Transport{Base: base, rand: zero} // the first goes as the cooldown ends
			start := time.Now()
			call := func(id string, after time.Duration) {
				time.Sleep(after)
				req := newReq(t, context.Background(), "GET", "")
				req.Header.Set("X-Request-ID", id)
				resp, err := tr.RoundTrip(req)
				if assert.NoError(t, err, id) {
					resp.Body.Close()
				}
			}
			var wg sync.WaitGroup
			wg.Go(func() { call("first", 0) })
			for i := range 4 { // they come in the order w0, w1, w2, w3
				wg.Go(func() { call(fmt.Sprintf("w%d", i), 500*time.Millisecond+time.Duration(i)*time.Millisecond) })
			}
			wg.Go(func() { call("late", 2010*time.Millisecond) }) // while the queue drains
			wg.Wait()
			type at struct {
				ID string
				At time.Duration
			}
			var got []at
			for _, s := range base.log() {
				got = append(got, at{s.requestID, s.at.Sub(start)})
			}
			// At the pace: 50 ms apart, a fifth less every 2 successes.
			ms := time.Millisecond
			want := []at{{"first", 0}, {"first", 2 * time.Second}, {"w0", 2050 * ms},
				{"w1", 2090 * ms}, {"w2", 2130 * ms}, {"w3", 2162 * ms}, {"late", 2194 * ms}}
			assert.Empty(t, cmp.Diff(want, got))
		})
	})
	t.Run("a turn past the deadline fails at once, unsent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}, rand: zero}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			var wg sync.WaitGroup
			wg.Go(func() { // takes the turn at 1s
				resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
				if assert.NoError(t, err) {
					resp.Body.Close()
				}
			})
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 1045*time.Millisecond)
			defer cancel()
			_, err = tr.RoundTrip(newReq(t, ctx, "GET", "")) // its turn, 1.05s at the pace, is too late
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.Equal(t, 1050*time.Millisecond, cd.RetryAfter)
			wg.Wait()
			assert.Equal(t, 2, base.attempts())
		})
	})
	t.Run("a call that cannot wait fails at once, unsent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "30"), answer(200)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}, rand: zero}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			time.Sleep(10 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req := newReq(t, ctx, "GET", "")
			req.Header.Set("X-Request-ID", "req_held")
			_, err = tr.RoundTrip(req)
			assert.ErrorIs(t, err, ErrRateLimited)
			assert.True(t, IsRetryable(err))
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.Equal(t, 20*time.Second, cd.RetryAfter)
			assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: held back locally, not sent: "+
				"api.neuracraft.com is cooling down after 429 Too Many Requests, turn in 20s (request req_held)", err.Error())
			assert.Equal(t, 1, base.attempts())
		})
	})
	t.Run("only the host that asked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "30"), answer(200)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			other := newReq(t, context.Background(), "GET", "")
			other.URL.Host = "other.example"
			start := time.Now()
			resp, err := tr.RoundTrip(other)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Zero(t, time.Since(start))
		})
	})
	t.Run("can be turned off", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "30"), answer(200)}}
			tr := &Transport{Base: base, DisableCooldown: true, Retry: RetryPolicy{MaxAttempts: 1}}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			start := time.Now()
			resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Zero(t, time.Since(start))
		})
	})
	t.Run("canceled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(429, "Retry-After", "30"), answer(200)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}
			_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
			require.Error(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			_, err = tr.RoundTrip(newReq(t, ctx, "GET", ""))
			assert.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, 1, base.attempts())
		})
	})
}

func TestReleaseGap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ span, want time.Duration }{
		{500 * time.Millisecond, 5 * time.Millisecond}, // an HTTP-date close to now
		{time.Second, 10 * time.Millisecond},
		{time.Minute, 10 * time.Millisecond}, // capped: a long pause does not slow the restart
	} {
		assert.Equal(t, tc.want, releaseGap(tc.span), "span %v", tc.span)
	}
}

func TestTransportHostsBounded(t *testing.T) {
	tr := &Transport{}
	h := tr.tableForUpdate()
	for i := range maxHosts + 10 {
		addFailing(h, fmt.Sprintf("h%d.example", i), time.Now())
	}
	assert.Equal(t, maxHosts, h.len(), "past maxHosts, the oldest hosts are dropped")
}
