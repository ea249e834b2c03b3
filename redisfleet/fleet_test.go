package redisfleet

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/internal/limits"
)

func TestFleetCooldownReachesEveryMember(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			noLeaks(t)
			s := topo.start(t)
			var members []*Fleet
			for range 4 {
				members = append(members, member(t, s, Options{}))
			}
			start := time.Now()
			members[0].Announce(host, pauseOf(2*time.Second, 429))
			cd, ok := members[0].Cooldown(host)
			require.True(t, ok, "announcer: no cooldown")
			require.Equal(t, neuracraft.Code(429), cd.Cause, "announcer: cause")
			require.GreaterOrEqual(t, cd.Until.Sub(start), 2*time.Second, "announcer: cooldown ends")
			for i, m := range members[1:] {
				_, learnt := waitFor(time.Second, func() bool { _, ok := m.Cooldown(host); return ok })
				after := time.Since(start)
				require.True(t, learnt, "member %d did not learn the cooldown within 1s", i+1)
				require.LessOrEqual(t, after, 50*time.Millisecond, "member %d learnt the cooldown after %v (limit 50ms)", i+1, after)
				got, _ := m.Cooldown(host)
				assert.WithinDuration(t, cd.Until, got.Until, 20*time.Millisecond, "member %d: cooldown ends %v from the announcer's", i+1, got.Until.Sub(cd.Until))
				// The pause engaged the fleet's pace: its first gap.
				assert.Equal(t, neuracraft.Cooldown{Until: got.Until, Gap: limits.PaceStartGap, Cause: 429, Epoch: got.Epoch}, got, "member %d", i+1)
				assert.NotZero(t, got.Epoch, "member %d: epoch", i+1)
			}
			t.Logf("every member knew within %v", time.Since(start))
			_, ok = waitFor(time.Second, func() bool { cd, _ = members[0].Cooldown(host); return cd.Epoch != 0 })
			require.True(t, ok, "announcer: no epoch from Redis within 1s")
			for i, m := range members[1:] {
				got, _ := m.Cooldown(host)
				assert.Equal(t, cd.Epoch, got.Epoch, "member %d: epoch", i+1)
			}
			_, ok = members[1].Cooldown("other.example")
			assert.False(t, ok, "a host nobody announced is cooling down")
		})
	}
}

func TestFleetLateMemberHolds(t *testing.T) {
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			noLeaks(t)
			s := topo.start(t)
			first := member(t, s, Options{})
			first.Announce(host, pauseOf(3*time.Second, 503))
			// Announce records in Redis from the Fleet's goroutine: the late
			// member starts once Redis holds the cooldown, so that it can
			// learn it only from Redis's state, not from the announcement.
			rdb := s.client(t)
			_, ok := waitFor(time.Second, func() bool {
				n, err := rdb.Exists(context.Background(), first.keys(host)[0]).Result()
				return err == nil && n == 1
			})
			require.True(t, ok, "the announcement did not reach Redis within 1s")
			late := member(t, s, Options{}) // started during the cooldown
			// New waits for its subscription at most 3 x OpTimeout, which
			// the race detector may exceed on a busy machine: the state is
			// read once the subscription is up.
			var cd neuracraft.Cooldown
			_, ok = waitFor(time.Second, func() bool { cd, ok = late.Cooldown(host); return ok })
			require.True(t, ok, "late member: no cooldown")
			require.Equal(t, neuracraft.Code(503), cd.Cause, "late member: cause")
			rest := time.Until(cd.Until)
			assert.GreaterOrEqual(t, rest, 2*time.Second, "late member: cooldown ends in %v, want about 3s", rest)
			assert.LessOrEqual(t, rest, 3*time.Second, "late member: cooldown ends in %v, want about 3s", rest)

			// Its Transport holds requests: a call that cannot wait fails unsent.
			var sent atomic.Int32
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
			defer api.Close()
			tr := transport(late)
			defer tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := get(ctx, tr, api.URL, "late")
			var cde *neuracraft.CooldownError
			require.ErrorAs(t, err, &cde)
			require.ErrorIs(t, err, neuracraft.ErrRateLimited)
			require.Equal(t, neuracraft.Code(503), cde.Cause, "the *CooldownError's cause")
			assert.Zero(t, sent.Load(), "requests that reached the server")
		})
	}
}

func TestFleetHeldCallsWaitTheirTurn(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	a, b := member(t, s, Options{}), member(t, s, Options{})
	var mu sync.Mutex
	var arrivals []time.Time
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}))
	defer api.Close()
	trs := []*neuracraft.Transport{transport(a), transport(b)}
	for _, tr := range trs {
		defer tr.CloseIdleConnections()
	}
	start := time.Now()
	a.Announce(host, pauseOf(500*time.Millisecond, 429))
	_, learnt := waitFor(time.Second, func() bool { _, ok := b.Cooldown(host); return ok })
	require.True(t, learnt, "the cooldown did not reach the member within 1s")

	// A call whose deadline comes before the end fails at once, unsent.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := get(ctx, trs[1], api.URL, "hurried")
	took := time.Since(began)
	require.ErrorIs(t, err, neuracraft.ErrRateLimited, "hurried call")
	require.LessOrEqual(t, took, 50*time.Millisecond, "hurried call: failed after %v, want at once", took)

	// Twelve calls over both members wait and go at the fleet's pace.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			_, err := get(context.Background(), trs[i%2], api.URL, fmt.Sprint("held", i))
			assert.NoError(t, err, "held call %d", i)
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, arrivals, 12, "requests the server saw")
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i].Before(arrivals[j]) })
	first := arrivals[0].Sub(start)
	assert.GreaterOrEqual(t, first, 490*time.Millisecond, "first held call sent %v after the 429, before the cooldown's end", first)
	// 11 gaps of the slow start (332 ms); a late first wake-up can
	// shorten what the server sees (the exact turns are checked in
	// TestFleetOnePaceAcrossMembers).
	span := arrivals[11].Sub(arrivals[0])
	want := fromMicros(slowStart(t)[11])
	assert.GreaterOrEqual(t, span, want-50*time.Millisecond, "12 held calls went out within %v, want them %v apart", span, want)
}

func TestFleetOnePaceAcrossMembers(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	var members []*Fleet
	for range 3 {
		members = append(members, member(t, s, Options{}))
	}
	members[0].Announce(host, pauseOf(300*time.Millisecond, 429))
	for _, m := range members {
		_, learnt := waitFor(time.Second, func() bool { cd, _ := m.Cooldown(host); return cd.Epoch != 0 })
		require.True(t, learnt, "the cooldown did not reach the member within 1s")
	}
	// Turns asked one after another, round the members, then
	// concurrently from every member: distinct turns that follow each
	// other in the server's clock at the fleet's pace, the slow start's.
	seen := map[int64]bool{}
	for i := range 9 {
		turn, err := members[i%3].Reserve(context.Background(), host, neuracraft.Hold{})
		require.NoError(t, err)
		seen[turn.ID] = true
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			turn, err := members[i%3].Reserve(context.Background(), host, neuracraft.Hold{})
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			seen[turn.ID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Len(t, seen, 39, "distinct turns")
	got := turnsOf(t, s.client(t), members[0], host)
	require.Len(t, got, 39, "turns in Redis")
	var offsets []int64
	for _, g := range got {
		offsets = append(offsets, g.slot-got[0].slot)
	}
	assert.Empty(t, cmp.Diff(slowStart(t)[:39], offsets), "turns: not at the slow start's offsets (µs)")
}

// TestFleetCutRespacesAndTellsEveryMember: a 429 met by a turn let go at
// the fleet's pace cuts it; the member that met it tells every other at
// once, and the turns still pending go at the new pace from the end of
// the new pause, in their order: the faster spacing they had is not kept.
func TestFleetCutRespacesAndTellsEveryMember(t *testing.T) {
	a, b, rdb := twoMembers(t)
	turns := heldTurns(t, 100*time.Millisecond, 20, a, b)
	// The 11th turn (b's), let go 16.384 ms after the 10th, meets a 429
	// of 100 ms.
	failed := turns[10]
	require.Equal(t, 16384*time.Microsecond, failed.Gap, "the ticket of the turn that fails")
	got := turnsOf(t, rdb, b, host)
	time.Sleep(fromMicros(got[10].slot - serverNow(t, rdb)))
	began := time.Now()
	b.Announce(host, neuracraft.Pause{RetryAfter: 100 * time.Millisecond, Gap: 10 * time.Millisecond, Cause: 429, Turn: failed})
	var cd neuracraft.Cooldown
	took, told := waitFor(time.Second, func() bool { cd, _ = a.Cooldown(host); return cd.Epoch > failed.Epoch })
	require.True(t, told, "the cut did not reach the other member within 1s")
	t.Logf("the other member learnt the cut %v after it was met", took)
	assert.LessOrEqual(t, took, 50*time.Millisecond, "the other member learnt the cut after %v", took)
	assert.Equal(t, 24576*time.Microsecond, cd.Gap, "the new pace: half as long again as the gap that failed")
	assert.WithinDuration(t, began.Add(100*time.Millisecond), cd.Until, 20*time.Millisecond, "the new pause")

	// The turns still pending: 24.576 ms apart from the new pause's end.
	pending := turnsOf(t, rdb, a, host)
	require.GreaterOrEqual(t, len(pending), 5, "turns pending after the cut")
	for i, p := range pending {
		assert.Equal(t, pending[0].slot+int64(i)*24576, p.slot, "pending turn %d: its slot", i)
		assert.Equal(t, int64(24576*time.Microsecond), p.gapN, "pending turn %d: its ticket", i)
	}
	// Asked again, the first of them gets that place, and the pace of its
	// new ticket.
	first, err := strconv.ParseInt(pending[0].id, 10, 64)
	require.NoError(t, err)
	var held neuracraft.Turn
	for _, turn := range turns {
		if turn.ID == first {
			held = turn
		}
	}
	require.NotZero(t, held.ID, "the first pending turn is one of those handed out")
	again, err := a.Reserve(context.Background(), host, neuracraft.Hold{Requeue: held})
	require.NoError(t, err)
	assert.Equal(t, neuracraft.Turn{Wait: again.Wait, ID: held.ID, Epoch: cd.Epoch, Gap: 24576 * time.Microsecond}, again)
	assert.InDelta(t, time.Until(cd.Until).Seconds(), again.Wait.Seconds(), 0.02, "its wait: the end of the new pause")

	// A 429 to a turn let go before the cut is no news.
	a.Announce(host, neuracraft.Pause{RetryAfter: 100 * time.Millisecond, Gap: 10 * time.Millisecond, Cause: 429, Turn: turns[9]})
	time.Sleep(50 * time.Millisecond)
	after, _ := a.Cooldown(host)
	assert.Equal(t, 24576*time.Microsecond, after.Gap, "a stale ticket cut the pace again")
}

// TestFleetTurnKeepsItsPlaceForALongerOwnCooldown: a held call whose own
// Transport's cooldown grew a little after it took its turn (another
// answer of the first wave came in later) asks again when its turn comes,
// and keeps the turn, going at its floor; a floor far past its place, or
// a newer cooldown of the fleet, gives it a new turn at the end of the
// queue.
func TestFleetTurnKeepsItsPlaceForALongerOwnCooldown(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	a := member(t, s, Options{})
	ctx := context.Background()
	turns := heldTurns(t, 100*time.Millisecond, 4, a)
	time.Sleep(turns[0].Wait) // the first turn has come

	again, err := a.Reserve(ctx, host, neuracraft.Hold{Floor: 5 * time.Millisecond, Requeue: turns[0]})
	require.NoError(t, err)
	assert.Equal(t, turns[0].ID, again.ID, "the turn was replaced")
	assert.LessOrEqual(t, again.Wait, 5*time.Millisecond, "the turn waits past its floor")

	far, err := a.Reserve(ctx, host, neuracraft.Hold{Floor: time.Second, Requeue: turns[1]})
	require.NoError(t, err)
	assert.NotEqual(t, turns[1].ID, far.ID, "a floor far past the turn's place kept it")
	assert.GreaterOrEqual(t, far.Wait, time.Second-schedulingMargin, "the new turn comes before the floor")

	a.Announce(host, pauseOf(time.Second, 429)) // a newer cooldown
	_, ok := waitFor(time.Second, func() bool { cd, _ := a.Cooldown(host); return cd.Epoch > turns[2].Epoch })
	require.True(t, ok, "the newer cooldown did not reach Redis within 1s")
	moved, err := a.Reserve(ctx, host, neuracraft.Hold{Requeue: turns[2]})
	require.NoError(t, err)
	assert.Equal(t, turns[2].ID, moved.ID, "a turn moved behind the newer cooldown keeps its ID")
	assert.Greater(t, moved.Wait, 500*time.Millisecond, "the moved turn goes before the newer cooldown ends")
}

func TestFleetCancelGivesTurnBack(t *testing.T) {
	a, b, rdb := twoMembers(t)
	turns := heldTurns(t, time.Second, 4, a, b)
	slots := turnsOf(t, rdb, a, host)
	require.Len(t, slots, 4)
	b.Cancel(host, turns[3]) // the last: the queue closes up
	a.Cancel(host, turns[1]) // in the middle: a hole the next caller takes
	// Cancel hands the work to the Fleet's goroutine: wait for it.
	_, given := waitFor(time.Second, func() bool {
		next := rdb.HGet(context.Background(), "{neuracraft:"+host+"}:cooldown", "next").Val()
		return next == fmt.Sprint(slots[3].slot) && rdb.ZCard(context.Background(), "{neuracraft:"+host+"}:holes").Val() == 1
	})
	require.True(t, given, "the turns were not given back within 1s")
	var got []int64
	for range 3 {
		turn, err := b.Reserve(context.Background(), host, neuracraft.Hold{})
		require.NoError(t, err)
		for _, g := range turnsOf(t, rdb, a, host) {
			if g.id == fmt.Sprint(turn.ID) {
				got = append(got, g.slot)
			}
		}
	}
	require.Len(t, got, 3)
	assert.Equal(t, []int64{slots[1].slot, slots[3].slot}, got[:2], "the next callers take the hole, then the last turn's place")
	assert.Greater(t, got[2], slots[3].slot, "and the next one comes after")
	a.Cancel(host, neuracraft.Turn{Wait: time.Second}) // refused turns have no ID: nothing happens
}

func TestFleetNewCooldownKeepsTheOrder(t *testing.T) {
	a, b, rdb := twoMembers(t)
	members := []*Fleet{a, b}
	a.Announce(host, pauseOf(300*time.Millisecond, 429))
	_, learnt := waitFor(time.Second, func() bool { cd, _ := b.Cooldown(host); return cd.Epoch != 0 })
	require.True(t, learnt, "the cooldown did not reach the member within 1s")
	var held []neuracraft.Turn
	for i := range 4 {
		turn, err := members[i%2].Reserve(context.Background(), host, neuracraft.Hold{})
		require.NoError(t, err)
		held = append(held, turn)
	}
	before := turnsOf(t, rdb, a, host)
	// A new cooldown, 200 ms longer, while they wait (met by a request
	// the fleet did not let go: the pace does not change); then a new
	// call.
	b.Announce(host, pauseOf(500*time.Millisecond, 503))
	_, learnt = waitFor(time.Second, func() bool { cd, _ := a.Cooldown(host); return cd.Epoch > held[0].Epoch })
	require.True(t, learnt, "the new cooldown's epoch did not reach the member within 1s")
	newcomer, err := a.Reserve(context.Background(), host, neuracraft.Hold{})
	require.NoError(t, err)
	// The held turns ask again, in any order: each gets its place back,
	// in the order they first had and at the pace they had, ahead of the
	// newcomer.
	moved := map[int64]neuracraft.Turn{}
	for _, i := range []int{3, 1, 0, 2} {
		turn, err := members[i%2].Reserve(context.Background(), host, neuracraft.Hold{Requeue: held[i]})
		require.NoError(t, err)
		assert.Greater(t, turn.Epoch, held[i].Epoch, "turn %d asked again: epoch", i)
		assert.Equal(t, held[i].ID, turn.ID, "turn %d asked again: its name", i)
		assert.Equal(t, held[i].Gap, turn.Gap, "turn %d asked again: its pace", i)
		moved[turn.ID] = turn
	}
	after := turnsOf(t, rdb, a, host)
	require.Len(t, after, 5)
	var ids []int64
	var offsets []int64
	for _, g := range after {
		id, _ := strconv.ParseInt(g.id, 10, 64)
		ids = append(ids, id)
		offsets = append(offsets, g.slot-after[0].slot)
	}
	assert.Equal(t, []int64{held[0].ID, held[1].ID, held[2].ID, held[3].ID, newcomer.ID}, ids, "the order of the turns")
	assert.Empty(t, cmp.Diff(slowStart(t)[:5], offsets), "moved turns and the newcomer: not at the slow start's offsets (µs)")
	assert.Greater(t, after[0].slot, before[0].slot+190000, "moved turns come after the new cooldown")
	// A moved turn given back becomes a hole the next caller takes.
	b.Cancel(host, held[2])
	_, given := waitFor(time.Second, func() bool {
		return rdb.ZCard(context.Background(), "{neuracraft:"+host+"}:holes").Val() == 1
	})
	require.True(t, given, "the moved turn was not given back within 1s")
	next, err := b.Reserve(context.Background(), host, neuracraft.Hold{})
	require.NoError(t, err)
	for _, g := range turnsOf(t, rdb, a, host) {
		if g.id == fmt.Sprint(next.ID) {
			assert.Equal(t, after[2].slot, g.slot, "the next caller takes the hole")
		}
	}
}

func TestFleetGarbageInRedis(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	ctx := context.Background()
	var log errLog
	opts := Options{OnError: log.add}
	keys := func(h string) []string { return (&Fleet{opt: Options{Prefix: DefaultPrefix}}).keys(h) }
	// A hostile state: a cooldown for ages, a gap of an hour; a key of
	// the wrong type; an index full of junk.
	require.NoError(t, rdb.HSet(ctx, keys("far.example")[0], "until", "99999999999999999999", "next", "nan",
		"gap", "3600000000", "cause", "9999", "epoch", "-3").Err())
	require.NoError(t, rdb.Set(ctx, keys("typo.example")[0], "not a hash", 0).Err())
	require.NoError(t, rdb.ZAdd(ctx, keys("typo.example")[1], redis.Z{Score: 1, Member: "x"}).Err())
	require.NoError(t, rdb.ZAdd(ctx, "neuracraft:hosts", redis.Z{Score: 1e18, Member: "far.example"},
		redis.Z{Score: 1e18, Member: "bad host{}"}, redis.Z{Score: 1e18, Member: "typo.example"}).Err())
	f := member(t, s, opts)
	_, ok := f.Cooldown("far.example")
	assert.False(t, ok, "a garbled until was taken for a cooldown")
	// Hostile messages: dropped (a pause past an hour is garbled), or the
	// gap capped.
	for _, msg := range []string{"hello", "1 2 3 4", "1 -5 10000 429 x.example", "1 99999999999999 10000 429 long.example",
		"1 500000 99999999999 777 gap.example", "1 500000 10000 429 bad{host}", "0 500000 10000 429 zero.example",
		"1 1800000000 10000 429 halfhour.example", "1 500000 10000 429 last.example"} {
		require.NoError(t, rdb.Publish(ctx, "neuracraft:cooldowns", msg).Err())
	}
	_, learnt := waitFor(time.Second, func() bool { _, ok := f.Cooldown("last.example"); return ok })
	require.True(t, learnt, "the cooldown did not reach the member within 1s")
	cd, ok := f.Cooldown("gap.example")
	assert.True(t, ok, "gap.example: a gap past maxGap: dropped, want it capped")
	assert.Equal(t, neuracraft.Cooldown{Until: cd.Until, Gap: maxGap, Cause: 429, Epoch: 1}, cd, "cause 777 and a gap of 28 h")
	_, ok = f.Cooldown("halfhour.example")
	assert.True(t, ok, "a pause of half an hour: dropped, want it kept (each call caps it)")
	for _, h := range []string{"x.example", "bad{host}", "long.example", "zero.example"} {
		_, ok := f.Cooldown(h)
		assert.False(t, ok, "%s: garbled message taken", h)
	}
	assert.GreaterOrEqual(t, log.count(ErrGarbled), 5, "garbled values reported, want at least 5: %v", log.all())
	// Turns over garbled state: the garbage is read as absent and replaced.
	hold := neuracraft.Hold{MaxWait: 2 * time.Second}
	for _, h := range []string{"far.example", "typo.example", "halfhour.example"} {
		t.Run(h, func(t *testing.T) {
			f.Announce(h, pauseOf(200*time.Millisecond, 429))
			turn, err := f.Reserve(ctx, h, hold)
			require.NoError(t, err)
			if turn.Wait > 2*time.Second {
				assert.Zero(t, turn.ID, "a turn %v away reserved past MaxWait", turn.Wait)
			}
		})
	}
	// State rewritten under a member's feet (instants from 1970): a turn
	// is still given at once, never refused for it.
	require.NoError(t, rdb.HSet(ctx, keys("gap.example")[0], "until", "1", "next", "1", "epoch", "1").Err())
	turn, err := f.Reserve(ctx, "gap.example", hold)
	require.NoError(t, err)
	assert.NotZero(t, turn.ID, "a turn reserved")
	assert.GreaterOrEqual(t, turn.Wait, time.Duration(0))
	assert.LessOrEqual(t, turn.Wait, 2*time.Second, "turn past MaxWait")
}

// announced has f announce a 429's pause of d for host, and waits until
// Redis holds it (f learns its epoch).
func announced(t *testing.T, f *Fleet, d time.Duration) {
	t.Helper()
	f.Announce(host, pauseOf(d, 429))
	_, ok := waitFor(time.Second, func() bool { cd, _ := f.Cooldown(host); return cd.Epoch != 0 })
	require.True(t, ok, "the announcement did not reach Redis within 1s")
}

// twoMembers starts a redis-server and two members of it; it returns
// them and a client of the server.
func twoMembers(t *testing.T) (a, b *Fleet, rdb redis.UniversalClient) {
	t.Helper()
	noLeaks(t)
	s := startRedis(t)
	return member(t, s, Options{}), member(t, s, Options{}), s.client(t)
}

// loggedMember starts a redis-server and one member of it whose errors
// go to the returned log; it returns the member and a client of the
// server.
func loggedMember(t *testing.T) (*Fleet, redis.UniversalClient, *errLog) {
	t.Helper()
	noLeaks(t)
	s := startRedis(t)
	log := new(errLog)
	return member(t, s, Options{OnError: log.add}), s.client(t), log
}

// TestFleetCutKeepsALongerCooldown: a cut (a 429 answered to a turn let
// go at the fleet's pace) whose Retry-After is shorter than the cooldown
// the fleet holds does not shorten it: no turn comes before the end of
// the longest Retry-After the fleet was told of.
func TestFleetCutKeepsALongerCooldown(t *testing.T) {
	a, b, rdb := twoMembers(t)
	ctx := context.Background()
	announced(t, a, 100*time.Millisecond) // engages the pace
	first, err := b.Reserve(ctx, host, neuracraft.Hold{})
	require.NoError(t, err)
	require.NotZero(t, first.ID)
	require.NotZero(t, first.Gap, "a turn at the pace")
	time.Sleep(first.Wait + 20*time.Millisecond) // b lets its request go at its turn

	e := epochOf(t, rdb, a, host)
	a.Announce(host, pauseOf(10*time.Second, 429)) // another request of a: Retry-After 10
	_, ok := waitFor(time.Second, func() bool { return epochOf(t, rdb, a, host) > e })
	require.True(t, ok, "the 10s cooldown did not reach Redis within 1s")

	e = epochOf(t, rdb, a, host)
	b.Announce(host, neuracraft.Pause{RetryAfter: time.Second, Gap: 10 * time.Millisecond, Cause: 429, Turn: first}) // the cut: Retry-After 1
	_, ok = waitFor(time.Second, func() bool { return epochOf(t, rdb, a, host) > e })
	require.True(t, ok, "the cut did not reach Redis within 1s")

	turn, err := a.Reserve(ctx, host, neuracraft.Hold{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, turn.Wait, 9500*time.Millisecond, "a turn before the end of the 10 s Retry-After")
	cd, ok := b.Cooldown(host)
	require.True(t, ok)
	assert.Greater(t, time.Until(cd.Until), 9500*time.Millisecond, "the cut told the other member a shorter cooldown")
}

// TestFleetImplausibleEpochIgnored: a message on the channel with an
// epoch no script could have made by now (garbled or hostile) is
// ignored, and a held call asks for its turn once.
func TestFleetImplausibleEpochIgnored(t *testing.T) {
	f, rdb, log := loggedMember(t)
	ctx := context.Background()
	announced(t, f, 300*time.Millisecond)
	before, _ := f.Cooldown(host)
	require.NoError(t, rdb.Publish(ctx, "neuracraft:cooldowns", "9000000000000000000 1 10000 429 "+host).Err())
	_, reported := waitFor(time.Second, func() bool { return log.count(ErrGarbled) > 0 })
	require.True(t, reported, "the message was not reported garbled within 1s")
	after, _ := f.Cooldown(host)
	assert.Equal(t, before.Epoch, after.Epoch, "the member took the message's epoch")

	co := counted{Fleet: f, mu: &sync.Mutex{}, reserves: map[string]int{}}
	api := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer api.Close()
	tr := transport(nil)
	tr.Coordinator = co
	defer tr.CloseIdleConnections()
	resp, err := get(context.WithValue(ctx, callID{}, "held"), tr, api.URL, "held")
	require.NoError(t, err)
	resp.Body.Close()
	co.mu.Lock()
	defer co.mu.Unlock()
	assert.Equal(t, 1, co.reserves["held"], "Reserves of one held call")
}

// TestFleetCancelOverGarbledGap: a turn given back while the host's gap
// in Redis is garbled becomes a hole as usual, the keys keep their
// expiry, and no error is reported: the gap is read as unknown.
func TestFleetCancelOverGarbledGap(t *testing.T) {
	f, rdb, log := loggedMember(t)
	ctx := context.Background()
	announced(t, f, 2*time.Second)
	var turns []neuracraft.Turn
	for range 3 {
		turn, err := f.Reserve(ctx, host, neuracraft.Hold{})
		require.NoError(t, err)
		turns = append(turns, turn)
	}
	require.NoError(t, rdb.HSet(ctx, f.keys(host)[0], "gap", "0").Err()) // out of range
	f.Cancel(host, turns[1])
	_, holed := waitFor(time.Second, func() bool { n, _ := rdb.ZCard(ctx, f.keys(host)[1]).Result(); return n == 1 })
	assert.True(t, holed, "the turn given back is not a hole")
	ttl, err := rdb.PTTL(ctx, f.keys(host)[1]).Result()
	require.NoError(t, err)
	assert.Positive(t, ttl, "the holes key has no expiry")
	assert.Empty(t, log.all(), "errors reported")
	next, err := f.Reserve(ctx, host, neuracraft.Hold{})
	require.NoError(t, err)
	assert.Equal(t, turns[1].Wait.Round(100*time.Millisecond), next.Wait.Round(100*time.Millisecond), "the hole is taken")
}

func TestFleetRedisKilledMidStorm(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	var log errLog
	var members []*Fleet
	for range 4 {
		members = append(members, member(t, s, Options{OnError: log.add}))
	}
	res := runStorm(t, members, func() {
		s.stop()
		// With Redis gone, a turn is refused within OpTimeout and the call
		// uses its own queue.
		began := time.Now()
		_, err := members[0].Reserve(context.Background(), host, neuracraft.Hold{})
		took := time.Since(began)
		assert.Error(t, err, "Reserve with Redis down")
		assert.LessOrEqual(t, took, DefaultOpTimeout+schedulingMargin, "Reserve with Redis down: refused after %v", took)
	})
	t.Logf("%v; %d Redis errors reported", res, log.count(nil))
	res.check(t, DefaultOpTimeout+schedulingMargin)
	assert.NotZero(t, log.count(nil), "Redis going away was not reported")
}

func TestFleetRedisFrozen(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	f := member(t, s, Options{})
	f.Announce(host, pauseOf(time.Second, 429))
	s.freeze() // connections stay open, nothing answers
	defer s.thaw()
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"Reserve", func() error { _, err := f.Reserve(context.Background(), host, neuracraft.Hold{}); return err }},
		{"Announce", func() error { f.Announce("other.example", pauseOf(5*time.Second, 429)); return nil }},
		{"Cancel", func() error { f.Cancel(host, neuracraft.Turn{ID: 1}); return nil }},
	} {
		t.Run(op.name, func(t *testing.T) {
			began := time.Now()
			_ = op.run()
			took := time.Since(began)
			assert.LessOrEqual(t, took, DefaultOpTimeout+schedulingMargin, "took %v with Redis frozen, want at most OpTimeout (%v)", took, DefaultOpTimeout)
		})
	}
	s.thaw()
}

func TestFleetRedisRestarted(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	opts := Options{RetryInterval: 100 * time.Millisecond}
	a, b := member(t, s, opts), member(t, s, opts)
	a.Announce(host, pauseOf(5*time.Second, 429))
	_, learnt := waitFor(time.Second, func() bool { _, ok := b.Cooldown(host); return ok })
	require.True(t, learnt, "the cooldown did not reach the member within 1s")
	s.stop()
	s.start() // empty: the cooldown is lost in Redis, not in the members
	// Both reconnect by themselves: an announcement reaches the other.
	took, reconnected := waitFor(5*time.Second, func() bool {
		a.Announce("after.example", pauseOf(2*time.Second, 429))
		_, ok := b.Cooldown("after.example")
		return ok
	})
	require.True(t, reconnected, "members did not reconnect within 5s")
	t.Logf("reconnected within %v", took)
	// The first turn asked records the cooldown the members still know
	// (and, off the request's path, the host in the index).
	_, err := b.Reserve(context.Background(), host, neuracraft.Hold{})
	require.NoError(t, err)
	rdb := s.client(t)
	_, indexed := waitFor(time.Second, func() bool { return rdb.ZScore(context.Background(), "neuracraft:hosts", host).Err() == nil })
	require.True(t, indexed, "the host did not reach the index within 1s")
	c := member(t, s, Options{})
	want, _ := a.Cooldown(host)
	got, ok := c.Cooldown(host)
	assert.True(t, ok, "a member started after the restart knows no cooldown")
	assert.WithinDuration(t, want.Until, got.Until, 50*time.Millisecond, "a member started after the restart: Cooldown ends %v from the first member's", got.Until.Sub(want.Until))
}

func TestFleetCloseStopsEverything(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	f := New(rdb, Options{})
	f.Announce(host, pauseOf(time.Second, 429))
	_, err := f.Reserve(context.Background(), host, neuracraft.Hold{})
	require.NoError(t, err)
	s.stop() // Close also works while the subscriber is reconnecting
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, f.Close(), "first Close")
	require.NoError(t, f.Close(), "second Close")
	// After Close the Fleet works alone: it still knows, and fails fast.
	_, ok := f.Cooldown(host)
	assert.True(t, ok, "Close forgot the cooldowns")
	_, err = f.Reserve(context.Background(), host, neuracraft.Hold{})
	assert.ErrorIs(t, err, errClosed, "Reserve after Close")
}

func TestFleetStoresOnlyHostsAndInstants(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	ctx := context.Background()
	watch := rdb.Subscribe(ctx, "neuracraft:cooldowns")
	defer watch.Close()
	_, err := watch.Receive(ctx)
	require.NoError(t, err)
	f := member(t, s, Options{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer api.Close()
	tr := transport(f)
	defer tr.CloseIdleConnections()
	tr.Retry.MaxAttempts = 1
	req, err := http.NewRequest("POST", "https://user:hunter2@"+host+"/v1/pipelines/pipe_secret?api_key=sk_live_secret", nil)
	require.NoError(t, err)
	req.Header.Set("X-Test-Server", api.URL)
	req.Header.Set("Authorization", "Bearer tok_secret")
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, neuracraft.ErrRateLimited, "want the 429")
	_, err = f.Reserve(ctx, host, neuracraft.Hold{}) // a turn, so the queue's state is there too
	require.NoError(t, err)
	msg, err := watch.ReceiveMessage(ctx)
	require.NoError(t, err)
	stored := []string{msg.Channel, msg.Payload}
	keys, err := rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		stored = append(stored, k)
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				stored = append(stored, f, v)
			}
		case "zset":
			stored = append(stored, rdb.ZRange(ctx, k, 0, -1).Val()...)
		}
	}
	for _, v := range stored {
		for _, secret := range []string{"secret", "hunter2", "user", "/v1", "pipe_", "?", "POST"} {
			assert.NotContains(t, v, secret, "Redis holds %q, which contains %q", v, secret)
		}
	}
	// The state expires a second after the pace the pause engaged ends
	// (30 s after it).
	for _, k := range []string{"cooldown", "turns", "tickets"} {
		ttl := rdb.PTTL(ctx, "{neuracraft:"+host+"}:"+k).Val()
		assert.GreaterOrEqual(t, ttl, 30500*time.Millisecond, "%s expires in %v, want about 31s", k, ttl)
		assert.LessOrEqual(t, ttl, 31100*time.Millisecond, "%s expires in %v, want about 31s", k, ttl)
	}
	t.Logf("in Redis: %q", stored)
}

// TestFleetNeverBeforeRetryAfter: with a Retry-After of 3 s, no call goes
// before 3 s through the Transport that honoured it, whatever the Fleet's
// options (with an OpTimeout of 5 ms Redis may not answer in time, and the
// other member then cannot know), and none through a member that knew it.
func TestFleetNeverBeforeRetryAfter(t *testing.T) {
	for _, opts := range []Options{{}, {OpTimeout: 5 * time.Millisecond, RetryInterval: 10 * time.Millisecond}} {
		t.Run(fmt.Sprintf("OpTimeout %v", opts.OpTimeout), func(t *testing.T) {
			noLeaks(t)
			s := startRedis(t)
			members := []*Fleet{member(t, s, opts), member(t, s, opts)}
			if opts.OpTimeout == 0 {
				synced(t, members...)
			}
			var trs []*neuracraft.Transport
			for _, m := range members {
				tr := transport(m)
				t.Cleanup(tr.CloseIdleConnections)
				trs = append(trs, tr)
			}
			api := startHeldAPI(t, "3")
			got := heldCalls(t, api, trs, members[:1], 4, 20*time.Millisecond)
			require.Len(t, got, 5, "calls that reached the API after the 429")
			knew := opts.OpTimeout == 0
			for _, a := range got {
				honoured := a.id == "first" || a.id == "h1" || a.id == "h3" // through trs[0]
				t.Logf("Retry-After: 3, %s sent %v after the 429", a.id, a.at.Sub(api.answered).Round(time.Millisecond))
				if honoured || knew {
					assert.GreaterOrEqual(t, a.at.Sub(api.answered), 3*time.Second, "%s sent before the Retry-After", a.id)
				}
			}
		})
	}
}

func TestFleetForeignCooldownBoundedByMaxRetryAfter(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	f := member(t, s, Options{})
	rdb := s.client(t)
	ctx := context.Background()
	// A foreign cooldown of 60,000 s: in Redis, and on the channel; and
	// one of half an hour, which the fleet keeps (within an hour).
	require.NoError(t, rdb.HSet(ctx, "{neuracraft:"+host+"}:cooldown", "until", "99999999999999999", "epoch", "5").Err())
	require.NoError(t, rdb.Publish(ctx, "neuracraft:cooldowns", "5 60000000000 10000 429 "+host).Err())
	require.NoError(t, rdb.Publish(ctx, "neuracraft:cooldowns", "6 1800000000 10000 429 "+host).Err())
	_, learnt := waitFor(time.Second, func() bool { _, ok := f.Cooldown(host); return ok })
	require.True(t, learnt, "the half-hour cooldown did not reach the member within 1s")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	tr := transport(f)
	tr.Retry.MaxRetryAfter = 2 * time.Second
	defer tr.CloseIdleConnections()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	began := time.Now()
	_, err := get(c, tr, api.URL, "patient")
	took := time.Since(began)
	require.NoError(t, err)
	t.Logf("held by a foreign half-hour cooldown with MaxRetryAfter 2s: sent after %v", took)
	assert.GreaterOrEqual(t, took, 2*time.Second-schedulingMargin, "the call was not held")
	assert.LessOrEqual(t, took, 2*time.Second+schedulingMargin, "the call waited past MaxRetryAfter")
}
