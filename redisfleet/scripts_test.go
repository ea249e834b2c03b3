// This file tests the pace that the scripts keep in Redis against the
// root package's pacer: both are held to the schedules of
// ../testdata/pace_schedules.json (written by the root package's
// TestPaceSchedules from its pacer).

package redisfleet

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
)

// paceScenario is a scenario of ../testdata/pace_schedules.json: a pace
// engaged by a pause of 100 ms, then phases of turns, each answered at
// once with success, except the turn Cut of a phase (-1: none), answered
// 429 with a pause of 100 ms, after which the next phase starts at the
// end of that pause. Turns are [µs from the phase's first, ticket gap
// ns].
type paceScenario struct {
	Name   string
	Bank   int // first-wave successes, told with the first Reserve
	Phases []struct {
		Turns [][2]int64
		Cut   int
	}
}

// scheduled is a turn as Redis holds it: its ID, slot (server µs) and
// the gap of its ticket (ns).
type scheduled struct {
	id         string
	slot, gapN int64
}

// turnsOf reads the turns of host that Redis keeps, in their order.
func turnsOf(t *testing.T, rdb redis.UniversalClient, f *Fleet, host string) []scheduled {
	t.Helper()
	ctx := context.Background()
	keys := f.keys(host)
	zs, err := rdb.ZRangeWithScores(ctx, keys[2], 0, -1).Result()
	require.NoError(t, err)
	var out []scheduled
	for _, z := range zs {
		id := z.Member.(string)
		g, err := rdb.HGet(ctx, keys[3], id).Int64()
		require.NoError(t, err, "the ticket of turn %s", id)
		out = append(out, scheduled{id: id, slot: int64(z.Score), gapN: g})
	}
	return out
}

// serverNow is the Redis server's clock, in µs.
func serverNow(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	require.NoError(t, err)
	return now.UnixMicro()
}

// epochOf is host's epoch in Redis.
func epochOf(t *testing.T, rdb redis.UniversalClient, f *Fleet, host string) int64 {
	t.Helper()
	e, err := rdb.HGet(context.Background(), f.keys(host)[0], "epoch").Int64()
	require.NoError(t, err)
	return e
}

// TestFleetPaceSchedules: the turns the scripts hand out follow the
// schedules of the root package's pacer to the microsecond, and their
// tickets name the same gaps to the nanosecond, in the slow start, after
// a cut in it, after a cut at a pace that held, and after a burst spent.
func TestFleetPaceSchedules(t *testing.T) {
	noLeaks(t)
	b, err := os.ReadFile("../testdata/pace_schedules.json")
	require.NoError(t, err)
	var scenarios []paceScenario
	require.NoError(t, json.Unmarshal(b, &scenarios))
	require.NotEmpty(t, scenarios)
	s := startRedis(t)
	rdb := s.client(t)
	f := member(t, s, Options{})
	ctx := context.Background()
	for i, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			h := fmt.Sprintf("pace%d.example", i)
			f.Announce(h, pauseOf(100*time.Millisecond, 429)) // engages the pace
			_, ok := waitFor(time.Second, func() bool { cd, _ := f.Cooldown(h); return cd.Epoch != 0 })
			require.True(t, ok, "the announcement did not reach Redis within 1s")
			// Every turn of every phase, asked at once, and ten more: the
			// turns still pending at a cut are handed out again after it.
			n := 10
			for _, ph := range sc.Phases {
				n += len(ph.Turns)
			}
			for i := range n {
				hold := neuracraft.Hold{}
				if i == 0 {
					hold.Admitted = sc.Bank
				}
				turn, err := f.Reserve(ctx, h, hold)
				require.NoError(t, err)
				require.NotZero(t, turn.ID)
			}
			for p, ph := range sc.Phases {
				got := turnsOf(t, rdb, f, h)
				require.GreaterOrEqual(t, len(got), len(ph.Turns), "phase %d: turns pending", p)
				var sched [][2]int64
				for _, g := range got[:len(ph.Turns)] {
					sched = append(sched, [2]int64{g.slot - got[0].slot, g.gapN})
				}
				require.Empty(t, cmp.Diff(ph.Turns, sched), "phase %d: [µs from its first turn, ticket gap ns]", p)
				if ph.Cut < 0 {
					continue
				}
				// The turn's answer is a 429, once its slot has come.
				cut := got[ph.Cut]
				time.Sleep(fromMicros(cut.slot - serverNow(t, rdb)))
				id, err := strconv.ParseInt(cut.id, 10, 64)
				require.NoError(t, err)
				epoch := epochOf(t, rdb, f, h)
				f.Announce(h, neuracraft.Pause{RetryAfter: 100 * time.Millisecond, Gap: 10 * time.Millisecond, Cause: 429,
					Turn: neuracraft.Turn{ID: id, Epoch: epoch, Gap: time.Duration(cut.gapN)}})
				_, ok := waitFor(time.Second, func() bool { return epochOf(t, rdb, f, h) > epoch })
				require.True(t, ok, "phase %d: the cut did not reach Redis within 1s", p)
			}
		})
	}
}

// TestFleetPaceProbes: past its hold, the pace probes faster, a twentieth
// every 8 turns, as the root package's does (here with a hold of 0).
func TestFleetPaceProbes(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	pace := append([]any(nil), paceArgs...)
	pace[3] = int64(0) // the hold, µs
	f := newFleet(s.client(t), Options{}, pace)
	t.Cleanup(func() { f.Close() })
	ctx := context.Background()
	f.Announce(host, pauseOf(100*time.Millisecond, 429))
	_, ok := waitFor(time.Second, func() bool { cd, _ := f.Cooldown(host); return cd.Epoch != 0 })
	require.True(t, ok, "the announcement did not reach Redis within 1s")
	reserve := func(n int) {
		for range n {
			_, err := f.Reserve(ctx, host, neuracraft.Hold{})
			require.NoError(t, err)
		}
	}
	reserve(12) // the slow start to 16.384 ms; its 11th turn is answered 429
	got := turnsOf(t, rdb, f, host)
	cut := got[10]
	require.Equal(t, int64(16384*time.Microsecond), cut.gapN)
	time.Sleep(fromMicros(cut.slot - serverNow(t, rdb)))
	id, _ := strconv.ParseInt(cut.id, 10, 64)
	epoch := epochOf(t, rdb, f, host)
	f.Announce(host, neuracraft.Pause{RetryAfter: 100 * time.Millisecond, Gap: 10 * time.Millisecond, Cause: 429,
		Turn: neuracraft.Turn{ID: id, Epoch: epoch, Gap: 16384 * time.Microsecond}})
	_, ok = waitFor(time.Second, func() bool { return epochOf(t, rdb, f, host) > epoch })
	require.True(t, ok, "the cut did not reach Redis within 1s")
	reserve(24)
	var gaps []time.Duration
	for _, g := range turnsOf(t, rdb, f, host) {
		gaps = append(gaps, time.Duration(g.gapN))
	}
	want := []time.Duration{24576 * time.Microsecond, 23347200, 22179840} // 8 turns each, a twentieth shorter
	for i, g := range gaps[:24] {
		assert.Equal(t, want[i/8], g, "turn %d", i)
	}
}

// TestFleetBankMakesSlowStartLinear: the first wave's successes that the
// members count add up; once they make a burst (3), while the pause that
// engaged the pace runs, the turns handed out so far are handed out
// again, in their order, at the linear slow start from one gap after
// the pause, but none before its old slot (its member asks again only
// then), in a new epoch every member hears of; counts told after the
// pause change nothing.
func TestFleetBankMakesSlowStartLinear(t *testing.T) {
	a, b, rdb := twoMembers(t)
	ctx := context.Background()
	a.Announce(host, pauseOf(time.Second, 429))
	_, ok := waitFor(time.Second, func() bool { cd, _ := a.Cooldown(host); return cd.Epoch != 0 })
	require.True(t, ok, "the announcement did not reach Redis within 1s")
	first := epochOf(t, rdb, a, host)
	for range 8 {
		_, err := a.Reserve(ctx, host, neuracraft.Hold{})
		require.NoError(t, err)
	}
	_, err := a.Reserve(ctx, host, neuracraft.Hold{Admitted: 2})
	require.NoError(t, err)
	assert.Equal(t, first, epochOf(t, rdb, a, host), "two successes are no burst")
	before := turnsOf(t, rdb, a, host)
	require.Len(t, before, 9)
	require.Equal(t, int64(50*time.Millisecond), before[0].gapN, "the slow start of old")
	require.Equal(t, int64(40*time.Millisecond), before[2].gapN, "a fifth shorter after 2")

	_, err = b.Reserve(ctx, host, neuracraft.Hold{Admitted: 1})
	require.NoError(t, err)
	second := epochOf(t, rdb, a, host)
	assert.Greater(t, second, first, "three make one: a new epoch")

	after := turnsOf(t, rdb, a, host)
	require.Len(t, after, 10)
	for i, turn := range before {
		assert.Equal(t, turn.id, after[i].id, "turn %d keeps its place", i)
	}
	until, err := rdb.HGet(ctx, a.keys(host)[0], "until").Int64()
	require.NoError(t, err)
	gap := int64(40 * time.Millisecond)
	slot := until + gap/1000 // the linear slow start, a gap after the pause
	var kept, moved int
	for i, turn := range after {
		assert.Equal(t, gap, turn.gapN, "turn %d at the linear slow start", i)
		if i < len(before) && before[i].slot > slot {
			slot = before[i].slot // never before its old slot
			kept++
		} else {
			moved++
		}
		assert.Equal(t, slot, turn.slot, "turn %d", i)
		r := 1e9 / float64(gap)
		gap = int64(1e9 / math.Sqrt(r*r+2*18))
		slot += gap / 1000
	}
	assert.Equal(t, before[0].slot, after[0].slot, "the first turn at its old slot, past the linear start's first gap")
	assert.Equal(t, []int{4, 6}, []int{kept, moved}, "the doubling start's first four slots, then the linear start's")
	_, ok = waitFor(time.Second, func() bool { cd, _ := b.Cooldown(host); return cd.Epoch == second })
	assert.True(t, ok, "the other member hears of the new epoch")

	time.Sleep(fromMicros(until - serverNow(t, rdb) + 1000))
	_, err = a.Reserve(ctx, host, neuracraft.Hold{Admitted: 5})
	require.NoError(t, err)
	assert.Equal(t, second, epochOf(t, rdb, a, host), "after the pause, a count changes nothing")
}
