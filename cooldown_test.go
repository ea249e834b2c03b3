// Tests of a host's cooldown (cooldown.go): its release gap and the queue of
// held requests on explicit instants, and through a Transport, on fake time
// and against a real loopback server: held calls let go in arrival order at
// the pace, calls that cannot wait their turn, callers who give up while
// held. cooldown_client_test.go has the cooldown as a caller meets it.

package neuracraft

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

func TestHostCooldownQueueAt(t *testing.T) {
	s := newHostState("h", defaultHostConfig())
	h, turn := s.holdAt(at(0), time.Time{}, new(ticket))
	assert.Nil(t, h, "no cooldown: go at once")
	assert.Equal(t, at(0), turn)

	s.coolUntil(at(2*time.Second), 2*time.Second, 429)
	s.coolUntil(at(time.Second), time.Second, 503) // earlier: no change
	assert.Equal(t, Code(429), s.cooldownCause())

	var hs []*holder
	var turns []time.Duration
	for range 4 {
		h, turn := s.holdAt(at(500*time.Millisecond), time.Time{}, new(ticket))
		require.NotNil(t, h)
		hs = append(hs, h)
		turns = append(turns, turn.Sub(t0))
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{2000 * ms, 2010 * ms, 2020 * ms, 2030 * ms}, turns, "10 ms apart, in arrival order")

	h, turn = s.holdAt(at(500*time.Millisecond), at(2035*time.Millisecond), new(ticket))
	assert.Nil(t, h, "its turn, 2.04 s, is after its deadline: refused, nothing reserved")
	assert.Equal(t, at(2040*time.Millisecond), turn)

	wake, released := s.takeTurnAt(hs[1], at(time.Second))
	assert.False(t, released)
	assert.True(t, wake.IsZero(), "only the first held request has a time")
	wake, released = s.takeTurnAt(hs[0], at(time.Second))
	assert.False(t, released)
	assert.Equal(t, at(2*time.Second), wake)

	// The second gives up while held: the third moves up.
	s.leave(hs[1])
	_, released = s.takeTurnAt(hs[0], at(2*time.Second))
	assert.True(t, released)
	assertNudged(t, hs[2])
	wake, _ = s.takeTurnAt(hs[2], at(2*time.Second))
	assert.Equal(t, at(2010*time.Millisecond), wake, "the third goes 10 ms after the first")
	h, turn = s.holdAt(at(2*time.Second), time.Time{}, new(ticket))
	require.NotNil(t, h)
	assert.Equal(t, at(2030*time.Millisecond), turn, "behind the two still held")
	s.leave(h)

	// A new cooldown catches the held ones: the first is nudged.
	s.coolUntil(at(5*time.Second), 3*time.Second, 503)
	assertNudged(t, hs[2])
	wake, _ = s.takeTurnAt(hs[2], at(2010*time.Millisecond))
	assert.Equal(t, at(5*time.Second), wake)
	_, released = s.takeTurnAt(hs[2], at(5*time.Second))
	assert.True(t, released)
	wake, _ = s.takeTurnAt(hs[3], at(5*time.Second))
	assert.Equal(t, at(5010*time.Millisecond), wake)
	s.leave(hs[3])
	s.leave(hs[3]) // twice: no harm

	h, _ = s.holdAt(at(5005*time.Millisecond), time.Time{}, new(ticket))
	assert.NotNil(t, h, "within 10 ms of the last release, a new request is paced too")
	s.leave(h)
	h, turn = s.holdAt(at(5010*time.Millisecond), time.Time{}, new(ticket))
	assert.Nil(t, h, "after that, nobody held: go at once")
	assert.Equal(t, at(5010*time.Millisecond), turn)
	assert.Zero(t, s.held)
	assert.True(t, s.settledAt(at(5010*time.Millisecond)))
}

func assertNudged(t *testing.T, h *holder) {
	t.Helper()
	select {
	case <-h.wake:
	default:
		t.Error("holder not nudged")
	}
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

// TestCooldownOnlyLiveCallersHoldSlots: on fake time, callers that give up
// while held leave no gap in the release order, and a call whose context
// is already done is not sent and reserves nothing.
func TestCooldownOnlyLiveCallersHoldSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "2"), answer(200)}}
		tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}, rand: zero}
		_, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		require.Error(t, err)
		start := time.Now()

		var wg sync.WaitGroup
		var cancels []context.CancelFunc
		for i := range 20 {
			ctx, cancel := context.WithCancel(context.Background())
			if i%2 == 1 {
				cancels = append(cancels, cancel) // these give up while held
			} else {
				defer cancel()
			}
			req := newReq(t, ctx, "GET", "")
			req.Header.Set("X-Request-ID", fmt.Sprintf("c%02d", i))
			wg.Go(func() {
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
			})
			synctest.Wait() // held in this order
		}
		done, cancel := context.WithCancel(context.Background())
		cancel()
		for range 5 {
			_, err := tr.RoundTrip(newReq(t, done, "GET", ""))
			assert.ErrorIs(t, err, context.Canceled)
		}
		time.Sleep(time.Second)
		for _, cancel := range cancels {
			cancel()
		}
		wg.Wait()

		var got []string
		for _, s := range base.log()[1:] {
			got = append(got, fmt.Sprintf("%s@%v", s.requestID, s.at.Sub(start)))
		}
		var want []string
		at := 2 * time.Second
		for i, gap := range []time.Duration{50, 40, 40, 32, 32, 25.6e6, 25.6e6, 20.48e6, 20.48e6, 0} {
			want = append(want, fmt.Sprintf("c%02d@%v", 2*i, at))
			if gap < time.Microsecond {
				gap *= time.Millisecond
			}
			at += gap
		}
		assert.Empty(t, cmp.Diff(want, got), "the live callers at the pace with no gaps, and nothing from the others")
	})
}

// TestCooldownPhantomSlots: 400 callers cancel while a cooldown holds
// them and 200 more come with a context already canceled; none of them
// is sent, none keeps a place, and once the cooldown is over a fresh call
// with a 1 s deadline goes at once.
func TestCooldownPhantomSlots(t *testing.T) {
	noLeaks(t)
	var hits, served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		served.Add(1)
	}))
	t.Cleanup(srv.Close)
	tr := loopbackTransport(t, RetryPolicy{MaxAttempts: 1})
	url := srv.URL + "/v1/pipelines"

	err := loopbackGet(t.Context(), tr, url, "first")
	require.ErrorIs(t, err, ErrRateLimited)
	s := tr.table().lookup(strings.TrimPrefix(srv.URL, "http://"))
	require.NotNil(t, s, "the host cools down")

	const held, canceled = 400, 200
	ctx, cancelHeld := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make([]error, held)
	for i := range held {
		wg.Go(func() { errs[i] = loopbackGet(ctx, tr, url, fmt.Sprintf("held-%d", i)) })
	}
	queued := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.held
	}
	require.Eventually(t, func() bool { return queued() == held }, 10*time.Second, time.Millisecond,
		"callers held (of %d)", held)

	done, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range canceled {
		assert.ErrorIs(t, loopbackGet(done, tr, url, fmt.Sprintf("done-%d", i)), context.Canceled)
	}
	cancelHeld()
	wg.Wait()
	for i, err := range errs {
		assert.ErrorIs(t, err, context.Canceled, "held-%d", i)
	}
	assert.Zero(t, queued(), "places kept by callers who left")

	s.mu.Lock()
	end := s.until
	s.mu.Unlock()
	time.Sleep(time.Until(end) + 20*time.Millisecond) // the cooldown is over

	short, cancelShort := context.WithTimeout(t.Context(), time.Second)
	defer cancelShort()
	require.NoError(t, loopbackGet(short, tr, url, "fresh"), "a fresh call after the cooldown")
	require.NoError(t, loopbackGet(t.Context(), tr, url, "fresh-no-deadline"))
	assert.Equal(t, int32(2), served.Load(), "requests the server received after the 429")
	assert.Equal(t, int32(3), hits.Load())
}
