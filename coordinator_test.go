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
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fleetHolding announces to co, as another member would, a pause of 1 s
// of cause (429 or 503) for api.neuracraft.com, released 10 ms apart, and
// returns a Transport on co whose Base answers 200 to every attempt.
func fleetHolding(co Coordinator, cause Code) (*scriptBase, *Transport) {
	co.Announce("api.neuracraft.com", Pause{RetryAfter: time.Second, Gap: 10 * time.Millisecond, Cause: cause})
	base := &scriptBase{steps: []step{answer(200)}}
	return base, &Transport{Base: base, Coordinator: co}
}

// fakeFleet is an in-memory Coordinator shared by several Transports, the
// way redisfleet is shared by several processes: one cooldown and one
// release queue per host, a new Epoch for each cooldown that ends later.
type fakeFleet struct {
	mu    sync.Mutex
	hosts map[string]*fakeHost
	fail  bool          // Reserve fails, as when the store is down
	late  time.Duration // Cooldown reports an end this much later than the fleet's, as a member whose view lags
	ahead int64         // Cooldown reports an Epoch this much larger than the fleet's turns carry, as a member told a garbled one
	delay time.Duration // Announce and Reserve take this long
	pace  time.Duration // the fleet's pace (setPace), or 0

	announces, reserves, cancels int
	emptyCancels                 int    // Cancels of a turn that reserved nothing (ID 0), which the contract rules out
	holds                        []Hold // what each Reserve was asked
}

type fakeHost struct {
	until, next time.Time
	gap         time.Duration
	cause       Code
	epoch       int64
}

var _ Coordinator = (*fakeFleet)(nil)

func (f *fakeFleet) Cooldown(host string) (Cooldown, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[host]
	if !ok {
		return Cooldown{}, false
	}
	now := time.Now()
	return Cooldown{Until: h.until.Add(f.late), Gap: f.spacing(h), Cause: h.cause, Epoch: h.epoch + f.ahead},
		h.until.Add(f.late).After(now) || h.next.After(now) || f.pace > 0
}

// setPace makes the fleet pace its hosts at gap from now on (0: no
// longer): its turns go gap apart and carry it as their Gap, and
// Cooldown holds a host with a cooldown while it does. Unpaced, turns go
// the release gap of the cooldown apart, with no Gap.
func (f *fakeFleet) setPace(gap time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pace = gap
}

// spacing is the time between two turns of h. f.mu must be held.
func (f *fakeFleet) spacing(h *fakeHost) time.Duration {
	if f.pace > 0 {
		return f.pace
	}
	return h.gap
}

func (f *fakeFleet) Announce(host string, p Pause) {
	time.Sleep(f.delay)
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
	if until := time.Now().Add(p.RetryAfter); until.After(h.until) {
		h.until, h.gap, h.cause = until, p.Gap, p.Cause
		h.epoch++
	}
}

func (f *fakeFleet) Reserve(ctx context.Context, host string, hold Hold) (Turn, error) {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	f.holds = append(f.holds, hold)
	if f.fail {
		return Turn{}, errors.New("fake fleet: store down")
	}
	now := time.Now()
	h := f.hosts[host]
	slot := now.Add(hold.Floor)
	for _, t := range []time.Time{h.until, h.next} {
		if t.After(slot) {
			slot = t
		}
	}
	turn := Turn{Wait: slot.Sub(now), Epoch: h.epoch, Gap: f.pace}
	if deadline, ok := ctx.Deadline(); (ok && slot.After(deadline)) || (hold.MaxWait > 0 && slot.Sub(now) > hold.MaxWait) {
		return turn, nil // reserves nothing
	}
	turn.ID = slot.UnixNano()
	h.next = slot.Add(f.spacing(h))
	return turn, nil
}

func (f *fakeFleet) Cancel(host string, turn Turn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancels++
	if turn.ID == 0 {
		f.emptyCancels++
	}
	h := f.hosts[host]
	if slot := time.Unix(0, turn.ID); turn.ID != 0 && slot.Add(f.spacing(h)).Equal(h.next) {
		h.next = slot
	}
}

func (f *fakeFleet) counts() [3]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return [3]int{f.announces, f.reserves, f.cancels}
}

func (f *fakeFleet) asked() []Hold {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Hold(nil), f.holds...)
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

// staggered sends n calls through tr, named prefix0, prefix1..., one
// millisecond apart, and waits for them; each must succeed.
func staggered(t *testing.T, tr *Transport, n int, prefix string) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond)
			assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprint(prefix, i)))
		})
	}
	wg.Wait()
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
			fleet.Announce("api.neuracraft.com", Pause{RetryAfter: 30 * time.Second, Gap: 10 * time.Millisecond, Cause: 429}) // by another member
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
			base, tr := fleetHolding(fleet, 503)
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
			base, tr := fleetHolding(fleet, 429)
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
		base, tr := fleetHolding(fleet, 429)
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

// TestCoordinatorEmptyTurnNotGivenBack: a call whose turn, behind the
// turns the fleet gave others, would come after its deadline fails at
// once with a *CooldownError; the turn Reserve answered with reserved
// nothing (ID 0), and is not given back (the contract of Cancel), while
// a turn that did reserve is.
func TestCoordinatorEmptyTurnNotGivenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		fleet.setPace(100 * time.Millisecond)
		_, tr := fleetHolding(fleet, 429) // turns at 1 s, 1.1 s, ...
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprint("c", i))) })
		}
		synctest.Wait() // five turns taken: 1 s to 1.4 s
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		defer cancel()
		var cdErr *CooldownError
		require.ErrorAs(t, callWith(t, tr, ctx, "late"), &cdErr) // its turn, 1.5 s, is past its deadline
		wg.Wait()
		assert.Zero(t, fleet.emptyCancels, "Cancels of a turn that reserved nothing")
		assert.Equal(t, [3]int{1, 6, 0}, fleet.counts(), "announces, reserves, cancels")
	})
}

// TestCoordinatorEpochUnknownToTheFleet: a member whose view of the fleet
// holds an Epoch that the fleet's turns never carry (a garbled message, a
// store restarted with an older clock) asks for its turn again once for
// it, not again and again; then the local queue holds the call to the
// cooldown the member knows, if it still runs, as after a failed Reserve.
func TestCoordinatorEpochUnknownToTheFleet(t *testing.T) {
	for _, tc := range []struct {
		name string
		late time.Duration // the member's view of the cooldown ends this much after the fleet's
		want time.Duration // when the call is sent
	}{
		// The fake gives a turn asked again the next free slot: one gap on.
		{"the cooldown it knows is over", 0, time.Second + 10*time.Millisecond},
		{"the cooldown it knows still runs", 500 * time.Millisecond, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fleet := &fakeFleet{ahead: 1 << 40, late: tc.late}
				base, tr := fleetHolding(fleet, 429)
				start := time.Now()
				require.NoError(t, callWith(t, tr, context.Background(), "x"))
				assert.Empty(t, cmp.Diff([]arrival{{"x", tc.want}}, sentAt(base, start)))
				assert.Equal(t, [3]int{1, 2, 0}, fleet.counts(), "announces, reserves (its turn, asked again once), cancels")
			})
		})
	}
}

func TestCoordinatorFailureFallsBackToLocalQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{fail: true}
		base, tr := fleetHolding(fleet, 429) // known, but Reserve fails
		start := time.Now()
		staggered(t, tr, 3, "c")
		// The local queue holds them to the fleet's cooldown end, paced by
		// the local gap of the 1 s that was left: 10 ms.
		want := []arrival{{"c0", time.Second}, {"c1", time.Second + 10*time.Millisecond}, {"c2", time.Second + 20*time.Millisecond}}
		assert.Empty(t, cmp.Diff(want, sentAt(base, start)))
	})
}

// TestCoordinatorFailureKeepsOtherTurns: when a Reserve fails, the fleet's
// cooldown holds that call in the local queue, but it is not the
// Transport's own cooldown: the calls that hold a fleet turn do not take
// it for a longer cooldown of their own, and keep their turns (one Reserve
// each, sent at their turn).
func TestCoordinatorFailureKeepsOtherTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &failingFor{fakeFleet: &fakeFleet{}, id: "unlucky"}
		base, tr := fleetHolding(fleet, 429) // by another member
		start := time.Now()
		var wg sync.WaitGroup
		for _, id := range []string{"a", "b"} {
			wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), id)) })
			synctest.Wait()
		}
		time.Sleep(100 * time.Millisecond)
		ctx := context.WithValue(context.Background(), callName{}, "unlucky")
		wg.Go(func() { assert.NoError(t, callWith(t, tr, ctx, "unlucky")) }) // its Reserve fails
		wg.Wait()
		// a and b at their turns; unlucky, whose Reserve failed, at the end
		// of the fleet's cooldown, from its own queue.
		want := []arrival{{"a", time.Second}, {"b", time.Second + 10*time.Millisecond}, {"unlucky", time.Second}}
		byID := cmpopts.SortSlices(func(x, y arrival) bool { return x.ID < y.ID })
		assert.Empty(t, cmp.Diff(want, sentAt(base, start), byID))
		assert.Equal(t, 3, fleet.counts()[1], "Reserves: one per call")
	})
}

// failingFor fails the Reserves of the call whose context names it id
// (callName).
type failingFor struct {
	*fakeFleet
	id string
}

type callName struct{}

func (f *failingFor) Reserve(ctx context.Context, host string, h Hold) (Turn, error) {
	turn, err := f.fakeFleet.Reserve(ctx, host, h)
	if ctx.Value(callName{}) == f.id {
		return Turn{}, errors.New("fake fleet: store down for this call")
	}
	return turn, err
}

// TestCoordinatorLearnsFromItsTurns: a 429 met by a request the fleet
// let go carries that turn to Announce, so that the fleet can tell a
// pace that was too fast from old news; one met by a request the fleet
// did not let go carries none.
func TestCoordinatorLearnsFromItsTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &recordingFleet{fakeFleet: &fakeFleet{}}
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(429, "Retry-After", "1"), answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet}
		require.NoError(t, callWith(t, tr, context.Background(), "storm"))
		pauses := fleet.paused()
		require.Len(t, pauses, 2)
		assert.Zero(t, pauses[0].Turn, "the first 429: not let go by the fleet")
		assert.NotZero(t, pauses[1].Turn.ID, "the second 429: met at the turn the fleet gave")
		assert.Equal(t, fleet.turns()[0], pauses[1].Turn)
	})
}

// recordingFleet records the Pauses it is told and the Turns it gives.
type recordingFleet struct {
	*fakeFleet
	pauses []Pause
	given  []Turn
}

func (f *recordingFleet) Announce(host string, p Pause) {
	f.fakeFleet.Announce(host, p)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pauses = append(f.pauses, p)
}

func (f *recordingFleet) Reserve(ctx context.Context, host string, h Hold) (Turn, error) {
	turn, err := f.fakeFleet.Reserve(ctx, host, h)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.given = append(f.given, turn)
	return turn, err
}

func (f *recordingFleet) paused() []Pause {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Pause(nil), f.pauses...)
}

func (f *recordingFleet) turns() []Turn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Turn(nil), f.given...)
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
		fleet.Announce("api.neuracraft.com", Pause{RetryAfter: time.Minute, Gap: 10 * time.Millisecond, Cause: 429})
		require.NoError(t, callWith(t, off, context.Background(), "ignored"))
		assert.Equal(t, [3]int{1, 0, 0}, fleet.counts(), "DisableCooldown: the fleet is not asked")
	})
}

func TestCoordinatorOneTurnPerHeldCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The member's view of the cooldown lags the fleet's by 15 ms, as
		// one learnt over a slow network: turns still come once each.
		fleet := &fakeFleet{late: 15 * time.Millisecond}
		base, tr := fleetHolding(fleet, 429)
		start := time.Now()
		staggered(t, tr, 6, "h")
		var want []arrival
		for i := range 6 {
			want = append(want, arrival{fmt.Sprint("h", i), time.Second + time.Duration(i)*10*time.Millisecond})
		}
		assert.Empty(t, cmp.Diff(want, sentAt(base, start)))
		assert.Equal(t, [3]int{1, 6, 0}, fleet.counts(), "announces, reserves, cancels")
	})
}

func TestCoordinatorNewCooldownRequeues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		base, tr := fleetHolding(fleet, 429)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "held")) })
		time.Sleep(500 * time.Millisecond)
		// Another member meets a new 429 while the call waits its turn.
		fleet.Announce("api.neuracraft.com", Pause{RetryAfter: 2 * time.Second, Gap: 10 * time.Millisecond, Cause: 503})
		wg.Wait()
		assert.Empty(t, cmp.Diff([]arrival{{"held", 2500 * time.Millisecond}}, sentAt(base, start)))
		holds := fleet.asked()
		require.Len(t, holds, 2, "one turn for each cooldown")
		assert.Zero(t, holds[0].Requeue, "the first turn asked")
		assert.Equal(t, Turn{Wait: time.Second, ID: start.Add(time.Second).UnixNano(), Epoch: 1},
			holds[1].Requeue, "the turn the new cooldown took back")
	})
}

func TestCoordinatorOwnLongerCooldownRequeues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A fleet that hears only the first announcement; the Transport's
		// second 429 comes 300 ms later and asks for 2 s.
		fleet := &onceFleet{fakeFleet: &fakeFleet{}}
		base := &slowBase{scriptBase: &scriptBase{steps: []step{answer(429, "Retry-After", "2"),
			answer(429, "Retry-After", "1"), answer(200)}}, slow: map[string]time.Duration{"b": 300 * time.Millisecond}}
		tr := &Transport{Base: base, Coordinator: fleet}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "b")) }) // answered at 300 ms
		synctest.Wait()
		wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "a")) })
		wg.Wait()
		// a's turn (1 s) came before the Transport's own cooldown, which
		// grew after a got it: a asks again, behind b.
		want := []arrival{{"b", 0}, {"a", 0}, {"b", 2300 * time.Millisecond}, {"a", 2310 * time.Millisecond}}
		assert.Empty(t, cmp.Diff(want, sentAt(base.scriptBase, start)))
		holds := fleet.asked()
		require.Len(t, holds, 3)
		assert.Equal(t, start.Add(time.Second).UnixNano(), holds[2].Requeue.ID, "a's second Hold names its first turn")
	})
}

// onceFleet passes on only the first announcement.
type onceFleet struct {
	*fakeFleet
	heard bool
}

func (f *onceFleet) Announce(host string, p Pause) {
	if !f.heard {
		f.heard = true
		f.fakeFleet.Announce(host, p)
	}
}

// slowBase answers the requests whose X-Request-ID is in slow after that
// long.
type slowBase struct {
	*scriptBase
	slow map[string]time.Duration
}

func (b *slowBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if d := b.slow[req.Header.Get("X-Request-ID")]; d > 0 {
		delete(b.slow, req.Header.Get("X-Request-ID"))
		resp, err := b.scriptBase.RoundTrip(req)
		time.Sleep(d)
		return resp, err
	}
	return b.scriptBase.RoundTrip(req)
}

func TestCoordinatorOwnCooldownIsAFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A fleet that keeps a shorter cooldown than the one the server
		// asked for, and answers turns that ignore Hold.Floor.
		fleet := &shortFleet{fakeFleet: &fakeFleet{}, cap: time.Second}
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "3"), answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet, rand: zero}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), "first")) })
		wg.Go(func() {
			time.Sleep(100 * time.Millisecond)
			assert.NoError(t, callWith(t, tr, context.Background(), "held"))
		})
		wg.Wait()
		want := []arrival{{"first", 0}, {"first", 3 * time.Second}, {"held", 3*time.Second + 50*time.Millisecond}} // the local queue, one gap of the pace apart
		assert.Empty(t, cmp.Diff(want, sentAt(base, start)), "sent before the Retry-After the Transport honoured")
		holds := fleet.asked()
		require.NotEmpty(t, holds)
		assert.Equal(t, 3*time.Second, holds[0].Floor, "the Transport's own cooldown, asked as a floor")
	})
}

// shortFleet keeps cooldowns of at most cap, and gives turns that ignore
// Hold.Floor.
type shortFleet struct {
	*fakeFleet
	cap time.Duration
}

func (f *shortFleet) Announce(host string, p Pause) {
	p.RetryAfter = min(p.RetryAfter, f.cap)
	f.fakeFleet.Announce(host, p)
}

func (f *shortFleet) Reserve(ctx context.Context, host string, h Hold) (Turn, error) {
	floor := h.Floor
	h.Floor = 0
	turn, err := f.fakeFleet.Reserve(ctx, host, h)
	f.mu.Lock()
	f.holds[len(f.holds)-1].Floor = floor
	f.mu.Unlock()
	return turn, err
}

func TestCoordinatorFleetWaitsBoundedByMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		// A hostile value: 60,000 s.
		fleet.Announce("api.neuracraft.com", Pause{RetryAfter: 60000 * time.Second, Gap: 10 * time.Millisecond, Cause: 429})
		base := &scriptBase{steps: []step{answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet, Retry: RetryPolicy{MaxRetryAfter: 2 * time.Second}}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, callWith(t, tr, ctx, "patient"))
		assert.Empty(t, cmp.Diff([]arrival{{"patient", 2 * time.Second}}, sentAt(base, start)))
		holds := fleet.asked()
		require.Len(t, holds, 1)
		assert.Equal(t, 2*time.Second, holds[0].MaxWait, "Hold.MaxWait: the Transport's MaxRetryAfter")

		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		began := time.Now()
		err := callWith(t, tr, ctx, "hurried")
		var cd *CooldownError
		require.ErrorAs(t, err, &cd, "a deadline before MaxRetryAfter: fails at once, unsent")
		assert.Equal(t, 2*time.Second, cd.RetryAfter)
		assert.Zero(t, time.Since(began))
	})
}

func TestCoordinatorSpentCarried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{delay: 20 * time.Millisecond}
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet}
		require.NoError(t, callWith(t, tr, context.Background(), "slow store"))
		holds := fleet.asked()
		require.Len(t, holds, 1)
		assert.Equal(t, 20*time.Millisecond, holds[0].Spent, "Hold.Spent after an Announce of 20ms")
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

// sentAtPauseEnd counts the arrivals sent as a pause ends at until, and
// those sent later; one sent before it is an error.
func sentAtPauseEnd(t *testing.T, got []arrival, until time.Duration) (atEnd, later int) {
	t.Helper()
	for _, a := range got {
		switch {
		case a.At == until:
			atEnd++
		case a.At > until:
			later++
		default:
			t.Errorf("%s sent at %v, before the pause ends", a.ID, a.At)
		}
	}
	return atEnd, later
}

// TestCoordinatorFirstWaveShare: the successes of the first wave that a
// Transport counts (answered after its 429, each within 6.25 ms of the
// last) are told to the Coordinator once (Hold.Admitted), and as many of
// the calls held by the pause go at its end without their fleet turns,
// which they give back; the others wait for their turns.
func TestCoordinatorFirstWaveShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		steps := []step{answer(200), answer(200), answer(200), answer(429, "Retry-After", "1")}
		base := &slowBase{scriptBase: &scriptBase{steps: append(steps, answer(200))},
			slow: map[string]time.Duration{"ok0": 2 * time.Millisecond, "ok1": 2 * time.Millisecond, "ok2": 3 * time.Millisecond}}
		tr := &Transport{Base: base, Coordinator: fleet, rand: zero}
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 3 { // admitted, answered after the 429
			wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprint("ok", i))) })
			synctest.Wait()
		}
		wg.Go(func() {
			time.Sleep(500 * time.Microsecond)
			assert.NoError(t, callWith(t, tr, context.Background(), "r0")) // 429, then held
		})
		time.Sleep(100 * time.Millisecond)
		for i := range 5 {
			wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprint("h", i))) })
			synctest.Wait()
		}
		wg.Wait()

		atEnd, later := sentAtPauseEnd(t, sentAt(base.scriptBase, start)[4:], 1000500*time.Microsecond)
		assert.Equal(t, 4, atEnd, "r0 at its turn, and three held calls, the Transport's part of the burst")
		assert.Equal(t, 2, later, "the other two at their turns")
		var admitted int
		for _, h := range fleet.asked() {
			admitted += h.Admitted
		}
		assert.Equal(t, 3, admitted, "the first wave's successes, told once")
		assert.Equal(t, [3]int{1, 6, 3}, fleet.counts(), "announces, reserves, cancels: the burst gave its turns back")
	})
}

// TestCoordinatorJoinsAnotherMembersFirstWave: successes answered to
// requests that went freely, while the Coordinator knows of a cooldown
// that another member's 429 started (as over HTTP/2, where a member's
// requests reach the limiter together and may all be admitted), are that
// pause's first wave: the Transport counts them as if the 429 were its
// own, tells them once (Hold.Admitted), and lets as many held calls go
// at the end of the pause without their turns. A single success is told
// nothing: several members' single successes may be a strict limiter's.
func TestCoordinatorJoinsAnotherMembersFirstWave(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		admitted                     int // first-wave successes
		told, atEnd, later, canceled int
	}{
		{name: "a burst", admitted: 3, told: 3, atEnd: 4, later: 1, canceled: 3},
		{name: "one success", admitted: 1, told: 0, atEnd: 1, later: 4, canceled: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fleet := &fakeFleet{}
				slow := map[string]time.Duration{}
				for i := range tc.admitted {
					slow[fmt.Sprint("ok", i)] = 2*time.Millisecond + time.Duration(i)*time.Millisecond/2
				}
				base := &slowBase{scriptBase: &scriptBase{steps: []step{answer(200)}}, slow: slow}
				tr := &Transport{Base: base, Coordinator: fleet, rand: zero}
				start := time.Now()
				var wg sync.WaitGroup
				for i := range tc.admitted { // sent before the fleet knows of a cooldown
					wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprint("ok", i))) })
					synctest.Wait() // slowBase is not safe for concurrent use
				}
				time.Sleep(time.Millisecond) // another member's 429, while they are answered
				fleet.Announce("api.neuracraft.com", Pause{RetryAfter: time.Second, Gap: 10 * time.Millisecond, Cause: 429})
				time.Sleep(100 * time.Millisecond)
				for i := range 5 {
					wg.Go(func() { assert.NoError(t, callWith(t, tr, context.Background(), fmt.Sprint("h", i))) })
					synctest.Wait()
				}
				wg.Wait()

				atEnd, later := sentAtPauseEnd(t, sentAt(base.scriptBase, start)[tc.admitted:], time.Second+time.Millisecond)
				assert.Equal(t, tc.atEnd, atEnd, "sent as the pause ends: the first turn, and the Transport's part of the burst")
				assert.Equal(t, tc.later, later, "sent at their turns")
				var told int
				for _, h := range fleet.asked() {
					told += h.Admitted
				}
				assert.Equal(t, tc.told, told, "the first wave's successes told")
				assert.Equal(t, [3]int{1, 5, tc.canceled}, fleet.counts(), "announces, reserves, cancels: the burst gave its turns back")
			})
		})
	}
}
