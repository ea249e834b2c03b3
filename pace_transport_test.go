package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// get sends one GET through tr with ctx, closes the answer's body, and
// returns RoundTrip's error.
func get(t *testing.T, tr *Transport, ctx context.Context) error {
	t.Helper()
	resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// TestPaceOutlivesTheQueue: once the requests held by a cooldown are let
// go, a request that comes later still goes at the pace, and the host's
// entry is kept while the pace holds; 30 s after the last pushback the
// pace ends, requests go at once and the entry is forgotten.
func TestPaceOutlivesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200)}}
		tr := &Transport{Base: base, rand: zero, Retry: RetryPolicy{MaxAttempts: 1}}
		start := time.Now()
		require.Error(t, get(t, tr, context.Background()))
		var wg sync.WaitGroup
		for range 3 { // held, let go at 1 s, 1.05 s, 1.1 s
			wg.Go(func() { assert.NoError(t, get(t, tr, context.Background())) })
		}
		synctest.Wait()
		wg.Wait()

		// The queue is empty; a request 10 ms after the last release
		// waits for its turn at the pace (40 ms after two successes).
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, get(t, tr, context.Background()))
		log := base.log()
		var sentAt []time.Duration
		for _, s := range log {
			sentAt = append(sentAt, s.at.Sub(start))
		}
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{0, 1000 * ms, 1050 * ms, 1090 * ms, 1130 * ms}, sentAt)
		assert.Equal(t, 1, tr.table().len(), "the entry of a paced host is kept")

		// Half a minute after the pushback, the pace has ended.
		time.Sleep(29 * time.Second)
		before := time.Now()
		require.NoError(t, get(t, tr, context.Background()))
		assert.Zero(t, time.Since(before), "sent at once")
		assert.Zero(t, tr.table().len(), "and the host forgotten")
	})
}

// TestPaceAfterPushback: a 429 to a request let go at the pace, in the
// slow start, pauses every request for its Retry-After, and then they go
// at the last gap that held, and no faster: each request leaves exactly
// one gap after the one before.
func TestPaceAfterPushback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		steps := []step{answer(429, "Retry-After", "1")}
		for range 10 {
			steps = append(steps, answer(200))
		}
		steps = append(steps, answer(429, "Retry-After", "1"), answer(200))
		base := &scriptBase{steps: steps}
		tr := &Transport{Base: base, rand: zero}
		start := time.Now()
		var wg sync.WaitGroup
		call := func(id string) {
			req := newReq(t, context.Background(), "GET", "")
			req.Header.Set("X-Request-ID", id)
			resp, err := tr.RoundTrip(req)
			if assert.NoError(t, err, id) {
				resp.Body.Close()
			}
		}
		wg.Go(func() { call("c00") })
		synctest.Wait()
		for i := 1; i < 15; i++ {
			wg.Go(func() { call(fmt.Sprintf("c%02d", i)) })
			synctest.Wait() // held in this order
		}
		wg.Wait()
		var got []string
		for _, s := range base.log() {
			got = append(got, fmt.Sprintf("%s@%v", s.requestID, s.at.Sub(start)))
		}
		want := []string{"c00@0s",
			// the slow start: 50 ms, a fifth less every 2 successes
			"c00@1s", "c01@1.05s", "c02@1.09s", "c03@1.13s", "c04@1.162s", "c05@1.194s", "c06@1.2196s",
			"c07@1.2452s", "c08@1.26568s", "c09@1.28616s", "c10@1.302544s", // 16.384 ms: a 429
			// a second later, half as long again as the gap that failed
			"c11@2.302544s", "c12@2.32712s", "c13@2.351696s", "c14@2.376272s", "c10@2.400848s"}
		assert.Empty(t, cmp.Diff(want, got))
	})
}

// TestPaceOff: DisableCooldown turns off the pause, the pace and the
// quota fields alike.
func TestPaceOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200, "RateLimit", `"default";r=0;t=5`)}}
		tr := &Transport{Base: base, DisableCooldown: true, Retry: RetryPolicy{MaxAttempts: 1}}
		require.Error(t, get(t, tr, context.Background()))
		start := time.Now()
		for range 5 {
			require.NoError(t, get(t, tr, context.Background()))
		}
		assert.Zero(t, time.Since(start), "DisableCooldown: no pause, no pace, no quota")
	})
}

// TestTurnEstimateWithABurst: a request whose turn in the queue comes
// after its deadline fails at once with a *CooldownError, also while the
// first wave's bank is let go first: only the bank's requests go at its
// gap (1 ms), the others at the pace (40 ms), and the estimate of a turn
// counts them so. Without the bank (no success of the first wave counted),
// the same.
func TestTurnEstimateWithABurst(t *testing.T) {
	for _, tc := range []struct {
		name string
		wave int // successes of the first wave answered after its 429
	}{{"a bank of 3", paceMinBank}, {"no bank", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n sync.Mutex
				sent := 0
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					n.Lock()
					sent++
					i := sent
					n.Unlock()
					if i == 1 {
						time.Sleep(time.Millisecond) // the whole first wave is sent by now
						return &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"1"}}, Body: http.NoBody, Request: req}, nil
					}
					if i <= 1+tc.wave {
						time.Sleep(10 * time.Millisecond) // the first wave's successes, answered after its 429
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := &Transport{Base: base, rand: zero, Retry: RetryPolicy{MaxAttempts: 1}}
				do := func(ctx context.Context) error {
					resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
					if err == nil {
						resp.Body.Close()
					}
					return err
				}
				var wg sync.WaitGroup
				for range 1 + tc.wave {
					wg.Go(func() { _ = do(context.Background()) })
				}
				wg.Wait()

				// 40 requests held by the cooldown, each with 1.2 s to live.
				var mu sync.Mutex
				var ok, refused, waitedOut int
				for range 40 {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
						defer cancel()
						began := time.Now()
						err := do(ctx)
						mu.Lock()
						defer mu.Unlock()
						var cdErr *CooldownError
						switch {
						case err == nil:
							ok++
						case errors.As(err, &cdErr):
							refused++
							assert.Zero(t, time.Since(began), "refused at once")
						default:
							waitedOut++
						}
					})
				}
				wg.Wait()
				assert.Zero(t, waitedOut, "requests held past their deadline (%d sent, %d refused at once)", ok, refused)
				assert.Positive(t, ok)
				assert.Positive(t, refused)
			})
		})
	}
}
