// This file tests a fleet against network faults between its members and
// Redis, made by a toxiproxy (proxy_test.go): latency, a blackhole, a
// cut. Each asserts the targets of issue 17, with what a call pays.

package redisfleet

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
)

// faultMargin is how much longer than OpTimeout a call may spend in the
// Fleet's methods in all: the 10 ms, or, under the race detector,
// the scheduling margin (the targets are asserted by the run without it:
// .ci/run runs these tests both ways).
func faultMargin(t *testing.T) time.Duration {
	if raceEnabled {
		t.Logf("race detector on: the margin over OpTimeout is %v, not 10ms", schedulingMargin)
		return schedulingMargin
	}
	return 10 * time.Millisecond
}

// callID is the context key under which heldAPI's callers name their
// call, for counted.
type callID struct{}

// counted is a Coordinator that counts the Reserves of each call (named
// by its context's callID).
type counted struct {
	*Fleet
	mu       *sync.Mutex
	reserves map[string]int
}

func (c counted) Reserve(ctx context.Context, host string, h neuracraft.Hold) (neuracraft.Turn, error) {
	turn, err := c.Fleet.Reserve(ctx, host, h)
	c.mu.Lock()
	c.reserves[fmt.Sprint(ctx.Value(callID{}))]++
	c.mu.Unlock()
	return turn, err
}

// heldAPI answers the first request named "first" 429 with Retry-After:
// after, and every other 200, recording when each came (but the
// connections' warm-ups).
type heldAPI struct {
	*httptest.Server
	mu       sync.Mutex
	answered time.Time // when the 429 went
	arrivals []arrival
}

type arrival struct {
	id string
	at time.Time
}

func startHeldAPI(t *testing.T, after string) *heldAPI {
	a := &heldAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		id := r.Header.Get("X-Request-ID")
		if strings.HasPrefix(id, "warm") {
			return
		}
		if a.answered.IsZero() && id == "first" {
			a.answered = time.Now()
			w.Header().Set("Retry-After", after)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		a.arrivals = append(a.arrivals, arrival{id, time.Now()})
	}))
	t.Cleanup(a.Close)
	return a
}

// heldCalls warms a connection of each Transport to the API up, sends
// "first" through trs[0], which draws the 429, waits
// until every member knows the cooldown, then sends n calls "h0"... one
// every spacing, round the Transports, and waits for all. It returns the
// API's record, sorted by arrival.
func heldCalls(t *testing.T, api *heldAPI, trs []*neuracraft.Transport, members []*Fleet, n int, spacing time.Duration) []arrival {
	var wg sync.WaitGroup
	call := func(tr *neuracraft.Transport, id string) {
		ctx := context.WithValue(context.Background(), callID{}, id)
		_, err := get(ctx, tr, api.URL, id)
		assert.NoError(t, err, "call %s", id)
	}
	for i, tr := range trs {
		call(tr, fmt.Sprint("warm", i))
	}
	wg.Go(func() { call(trs[0], "first") })
	for _, m := range members {
		_, learnt := waitFor(time.Second, func() bool { _, ok := m.Cooldown(host); return ok })
		if !assert.True(t, learnt, "the cooldown did not reach a member within 1s") {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // "first" has its turn: the held calls come after it
	for i := range n {
		wg.Go(func() { call(trs[(i+1)%len(trs)], fmt.Sprint("h", i)) })
		time.Sleep(spacing)
	}
	wg.Wait()
	api.mu.Lock()
	defer api.mu.Unlock()
	got := append([]arrival(nil), api.arrivals...)
	sort.Slice(got, func(i, j int) bool { return got[i].at.Before(got[j].at) })
	return got
}

// warm opens a few connections of f's client, as a member that has been
// running for a while has: a request's turn then costs one round trip,
// not the handshake of a new connection as well.
func warm(t *testing.T, f *Fleet) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { assert.NoError(t, f.rdb.Ping(context.Background()).Err(), "warming a connection up") })
	}
	wg.Wait()
}

func TestFleetLatency6ms(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	p := startProxy(t, s)
	p.latency(6 * time.Millisecond)
	// The calls go at the fleet's pace: the n held calls behind "first"
	// take the slow start's first n gaps (50, 50, 40, 40 ms...).
	paced := func(n int) time.Duration { return fromMicros(slowStart(t)[n]) }
	for _, tc := range []struct {
		name    string
		n       int
		spacing time.Duration
		ordered bool
		limit   time.Duration // after the Retry-After, for the last call
	}{
		{"6 held calls", 6, 30 * time.Millisecond, true, paced(6) + 150*time.Millisecond},
		{"40 held calls", 40, 5 * time.Millisecond, false, paced(40) + 150*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			reserves := map[string]int{}
			var members []*Fleet
			var trs []*neuracraft.Transport
			for range 2 {
				m := member(t, p, Options{Prefix: tc.name})
				warm(t, m)
				members = append(members, m)
				tr := transport(nil)
				tr.Coordinator = counted{m, &mu, reserves}
				t.Cleanup(tr.CloseIdleConnections)
				trs = append(trs, tr)
			}
			synced(t, members...)
			api := startHeldAPI(t, "1")
			got := heldCalls(t, api, trs, members, tc.n, tc.spacing)
			require.Len(t, got, tc.n+1, "calls that reached the API after the 429")
			var order []string
			for _, a := range got {
				order = append(order, a.id)
			}
			first, last := got[0].at.Sub(api.answered), got[len(got)-1].at.Sub(api.answered)
			t.Logf("after the 429: first call sent at %v, last at %v (target %v); order %v; Reserves per call %v",
				first.Round(time.Millisecond), last.Round(time.Millisecond), time.Second+tc.limit, order, reserves)
			assert.GreaterOrEqual(t, first, time.Second, "a call sent before the Retry-After")
			assert.LessOrEqual(t, last, time.Second+tc.limit, "the last held call went %v after the 429", last)
			if tc.ordered {
				want := []string{"first"}
				for i := range tc.n {
					want = append(want, fmt.Sprint("h", i))
				}
				assert.Equal(t, want, order, "the order the calls reached the API in")
				for _, id := range want {
					assert.Equal(t, 1, reserves[id], "Reserves of call %s", id)
				}
			}
		})
	}
}

func TestFleetLostCooldownLatency15ms(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	p := startProxy(t, s)
	a := member(t, p, Options{})
	a.Announce(host, pauseOf(3*time.Second, 429))
	_, ok := waitFor(time.Second, func() bool { cd, _ := a.Cooldown(host); return cd.Epoch != 0 })
	require.True(t, ok, "the announcement did not reach Redis within 1s")
	require.NoError(t, s.client(t).FlushAll(context.Background()).Err()) // Redis loses it
	p.latency(15 * time.Millisecond)
	began := time.Now()
	turn, err := a.Reserve(context.Background(), host, neuracraft.Hold{MaxWait: time.Minute})
	took := time.Since(began)
	require.NoError(t, err)
	t.Logf("Reserve recording a lost cooldown, 15 ms each way: %v (OpTimeout %v)", took, DefaultOpTimeout)
	assert.LessOrEqual(t, took, DefaultOpTimeout, "Reserve took %v", took)
	assert.Greater(t, turn.Wait, 2*time.Second, "the cooldown the member knew was not recorded again")
	assert.True(t, s.client(t).Exists(context.Background(), "{neuracraft:"+host+"}:cooldown").Val() == 1, "the state is back in Redis")
}

func TestFleetLatency200msStorm(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	p := startProxy(t, s)
	var log errLog
	var members []*Fleet
	for range 4 {
		members = append(members, member(t, p, Options{OnError: log.add}))
	}
	res := runStorm(t, members, func() { p.latency(200 * time.Millisecond) })
	t.Logf("200 ms each way from 300 ms into the storm: %v; %d Redis errors reported", res, log.count(nil))
	res.check(t, DefaultOpTimeout+faultMargin(t))
	assert.NotZero(t, log.count(nil), "the latency was not reported")
}

func TestFleetBlackhole(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	p := startProxy(t, s)
	var log errLog
	var storm, closing []*Fleet
	for range 4 {
		storm = append(storm, member(t, p, Options{OnError: log.add}))
	}
	for range 4 {
		closing = append(closing, New(p.client(t), Options{}))
	}
	var wg sync.WaitGroup
	var closes [4]time.Duration
	res := runStorm(t, storm, func() {
		p.blackhole()
		start := time.Now()
		for i, m := range closing {
			wg.Go(func() {
				time.Sleep(time.Until(start.Add(500*time.Millisecond + time.Duration(i)*time.Second)))
				began := time.Now()
				assert.NoError(t, m.Close())
				closes[i] = time.Since(began)
			})
		}
	})
	wg.Wait()
	t.Logf("a blackhole from 300 ms into the storm: %v; Close at 0.5, 1.5, 2.5, 3.5 s into it took %v", res, closes)
	res.check(t, DefaultOpTimeout+faultMargin(t))
	for i, took := range closes {
		assert.LessOrEqual(t, took, DefaultOpTimeout+100*time.Millisecond, "Close %v into the blackhole took %v", 500*time.Millisecond+time.Duration(i)*time.Second, took)
	}
	p.heal()
}

func TestFleetCut(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	p := startProxy(t, s)
	var log errLog
	opts := Options{OnError: log.add, RetryInterval: 200 * time.Millisecond}
	var members []*Fleet
	for range 4 {
		members = append(members, member(t, p, opts))
	}
	res := runStorm(t, members, p.cut)
	t.Logf("connections cut 300 ms into the storm: %v; %d Redis errors reported", res, log.count(nil))
	res.check(t, DefaultOpTimeout+faultMargin(t))
	assert.NotZero(t, log.count(nil), "the cut was not reported")
	// Healed, the members find Redis again by themselves.
	p.heal()
	took, back := waitFor(5*time.Second, func() bool {
		members[0].Announce("after.example", pauseOf(2*time.Second, 429))
		_, ok := members[1].Cooldown("after.example")
		return ok
	})
	require.True(t, back, "members did not reconnect within 5s")
	t.Logf("reconnected within %v", took)
	var closed atomic.Int64
	began := time.Now()
	require.NoError(t, members[2].Close())
	closed.Store(int64(time.Since(began)))
	assert.LessOrEqual(t, time.Duration(closed.Load()), DefaultOpTimeout+100*time.Millisecond, "Close")
}
