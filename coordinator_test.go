package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeFleet is an in-memory Coordinator shared by several Transports, the
// way redisfleet is shared by several processes: one cooldown and one
// release queue per host.
type fakeFleet struct {
	mu    sync.Mutex
	hosts map[string]*fakeHost
	fail  bool // Reserve fails, as when the store is down

	announces, reserves, cancels int
}

type fakeHost struct {
	until, next time.Time
	gap         time.Duration
	cause       Code
}

var _ Coordinator = (*fakeFleet)(nil)

func (f *fakeFleet) Cooldown(host string) (time.Time, Code, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[host]
	if !ok {
		return time.Time{}, 0, false
	}
	now := time.Now()
	return h.until, h.cause, h.until.After(now) || h.next.After(now)
}

func (f *fakeFleet) Announce(host string, pause, gap time.Duration, cause Code) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.announces++
	if f.hosts == nil {
		f.hosts = make(map[string]*fakeHost)
	}
	h, ok := f.hosts[host]
	if !ok {
		h = &fakeHost{}
		f.hosts[host] = h
	}
	if until := time.Now().Add(pause); until.After(h.until) {
		h.until, h.gap, h.cause = until, gap, cause
	}
}

func (f *fakeFleet) Reserve(ctx context.Context, host string) (Turn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	if f.fail {
		return Turn{}, errors.New("fake fleet: store down")
	}
	now := time.Now()
	h := f.hosts[host]
	slot := now
	for _, t := range []time.Time{h.until, h.next} {
		if t.After(slot) {
			slot = t
		}
	}
	turn := Turn{Wait: slot.Sub(now), ID: slot.UnixNano()}
	if deadline, ok := ctx.Deadline(); ok && slot.After(deadline) {
		return turn, nil // reserves nothing
	}
	h.next = slot.Add(h.gap)
	return turn, nil
}

func (f *fakeFleet) Cancel(host string, turn Turn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels++
	h := f.hosts[host]
	if slot := time.Unix(0, turn.ID); slot.Add(h.gap).Equal(h.next) {
		h.next = slot
	}
}

func (f *fakeFleet) counts() [3]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return [3]int{f.announces, f.reserves, f.cancels}
}

// arrival is one request as the server saw it: its ID and when, from the
// start.
type arrival struct {
	ID string
	At time.Duration
}

func sentAt(base *scriptBase, start time.Time) []arrival {
	var got []arrival
	for _, s := range base.log() {
		got = append(got, arrival{s.requestID, s.at.Sub(start)})
	}
	return got
}

// callWith sends one GET through tr with the given X-Request-ID.
func callWith(t *testing.T, tr *Transport, ctx context.Context, id string) error {
	req := newReq(t, ctx, "GET", "")
	req.Header.Set("X-Request-ID", id)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func TestCoordinatorSharesCooldownAndPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "2"), answer(200)}}
		members := []*Transport{{Base: base, Coordinator: fleet}, {Base: base, Coordinator: fleet}}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, callWith(t, members[0], context.Background(), "first")) })
		for i := range 4 { // w0 on member 1, w1 on member 0, ...: one queue for both
			wg.Go(func() {
				time.Sleep(500*time.Millisecond + time.Duration(i)*time.Millisecond)
				assert.NoError(t, callWith(t, members[(i+1)%2], context.Background(), fmt.Sprintf("w%d", i)))
			})
		}
		wg.Go(func() { // while the fleet's queue drains, behind it
			time.Sleep(2005 * time.Millisecond)
			assert.NoError(t, callWith(t, members[0], context.Background(), "late"))
		})
		wg.Wait()
		gap := 10 * time.Millisecond
		want := []arrival{{"first", 0}, {"first", 2 * time.Second}, {"w0", 2*time.Second + gap},
			{"w1", 2*time.Second + 2*gap}, {"w2", 2*time.Second + 3*gap}, {"w3", 2*time.Second + 4*gap},
			{"late", 2*time.Second + 5*gap}}
		assert.Empty(t, cmp.Diff(want, sentAt(base, start)))
		assert.Equal(t, [3]int{1, 6, 0}, fleet.counts(), "announces, reserves, cancels")
	})
}

func TestCoordinatorHeldCallsThatCannotWait(t *testing.T) {
	t.Run("deadline before the fleet's cooldown ends: no turn asked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fleet := &fakeFleet{}
			fleet.Announce("api.neuracraft.com", 30*time.Second, 10*time.Millisecond, 429) // by another member
			base := &scriptBase{steps: []step{answer(200)}}
			tr := &Transport{Base: base, Coordinator: fleet}
			time.Sleep(10 * time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := callWith(t, tr, ctx, "req_held")
			assert.ErrorIs(t, err, ErrRateLimited)
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.Equal(t, 20*time.Second, cd.RetryAfter)
			assert.Equal(t, "neuracraft: GET /v1/pipelines/pipe_1: held back locally, not sent: "+
				"api.neuracraft.com is cooling down after 429 Too Many Requests, turn in 20s (request req_held)", err.Error())
			assert.Zero(t, base.attempts())
			assert.Equal(t, [3]int{1, 0, 0}, fleet.counts())
		})
	})
	t.Run("deadline before its turn: refused, unsent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fleet := &fakeFleet{}
			fleet.Announce("api.neuracraft.com", time.Second, 10*time.Millisecond, 503)
			base := &scriptBase{steps: []step{answer(200)}}
			tr := &Transport{Base: base, Coordinator: fleet}
			start := time.Now()
			var wg sync.WaitGroup
			wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "first")) }) // turn at 1s
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 1005*time.Millisecond)
			defer cancel()
			err := callWith(t, tr, ctx, "second") // its turn, 1.01s, is too late
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.Equal(t, 1010*time.Millisecond, cd.RetryAfter)
			assert.Equal(t, Code(503), cd.Cause)
			wg.Wait()
			assert.Equal(t, []arrival{{"first", time.Second}}, sentAt(base, start))
		})
	})
	t.Run("context already done: nothing reserved, nothing sent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fleet := &fakeFleet{}
			fleet.Announce("api.neuracraft.com", time.Second, 10*time.Millisecond, 429)
			base := &scriptBase{steps: []step{answer(200)}}
			tr := &Transport{Base: base, Coordinator: fleet}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			assert.ErrorIs(t, callWith(t, tr, ctx, "gone"), context.Canceled)
			assert.Equal(t, [3]int{1, 0, 0}, fleet.counts())
			assert.Zero(t, base.attempts())
		})
	})
}

func TestCoordinatorCancelGivesTurnBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		fleet.Announce("api.neuracraft.com", time.Second, 10*time.Millisecond, 429)
		base := &scriptBase{steps: []step{answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "x")) }) // turn at 1s
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		wg.Go(func() { assert.ErrorIs(t, callWith(t, tr, ctx, "y"), context.Canceled) }) // turn at 1.01s
		synctest.Wait()
		time.Sleep(500 * time.Millisecond)
		cancel()
		synctest.Wait()
		wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "z")) }) // y's turn again
		wg.Wait()
		assert.Empty(t, cmp.Diff([]arrival{{"x", time.Second}, {"z", time.Second + 10*time.Millisecond}}, sentAt(base, start)))
		assert.Equal(t, [3]int{1, 3, 1}, fleet.counts())
	})
}

func TestCoordinatorFailureFallsBackToLocalQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{fail: true}
		fleet.Announce("api.neuracraft.com", time.Second, 10*time.Millisecond, 429) // known, but Reserve fails
		base := &scriptBase{steps: []step{answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Millisecond)
				assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprintf("c%d", i)))
			})
		}
		wg.Wait()
		// The local queue holds them to the fleet's cooldown end, paced by
		// the local gap of the 1 s that was left: 10 ms.
		want := []arrival{{"c0", time.Second}, {"c1", time.Second + 10*time.Millisecond}, {"c2", time.Second + 20*time.Millisecond}}
		assert.Empty(t, cmp.Diff(want, sentAt(base, start)))
	})
}

func TestCoordinatorNotAskedOnTheSuccessPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		base := &scriptBase{steps: []step{answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet}
		for range 10 {
			require.NoError(t, callWith(t, tr, context.Background(), "ok"))
		}
		assert.Equal(t, [3]int{0, 0, 0}, fleet.counts())

		off := &Transport{Base: base, Coordinator: fleet, DisableCooldown: true}
		fleet.Announce("api.neuracraft.com", time.Minute, 10*time.Millisecond, 429)
		require.NoError(t, callWith(t, off, context.Background(), "ignored"))
		assert.Equal(t, [3]int{1, 0, 0}, fleet.counts(), "DisableCooldown: the fleet is not asked")
	})
}

// staticBase answers every request with the same 200, allocating only
// the response, so that allocation counts show the Transport's own.
type staticBase struct{}

func (staticBase) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

func TestCoordinatorIdleCostsNoAllocation(t *testing.T) {
	without := successAllocs(t, &Transport{Base: staticBase{}})
	with := successAllocs(t, &Transport{Base: staticBase{}, Coordinator: &fakeFleet{}})
	assert.Equal(t, without, with)
}

// BenchmarkCoordinatorIdle compares a successful call through a Transport
// without a Coordinator and with one that knows no cooldown. Run with:
//
//	go test -run '^$' -bench CoordinatorIdle -benchmem .
func BenchmarkCoordinatorIdle(b *testing.B) {
	for _, bc := range []struct {
		name string
		tr   *Transport
	}{
		{"without", &Transport{Base: staticBase{}}},
		{"with", &Transport{Base: staticBase{}, Coordinator: &fakeFleet{}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := bc.tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
