package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/neuracraft/neuracraft-go"
)

// The fleet lab: labMembers processes (in-process Transports, each with
// its own connection pool and, with the fleet, its own Redis client) of
// labCallers callers each, every caller making labCalls calls one after
// the other, against an API that allows labRate requests a second (a
// token bucket holding labBurst) and answers the others 429 with
// Retry-After: 1. A request it admits takes labWork to answer; one it
// refuses is answered at once, as an API behind a gateway does (nginx,
// in bench's lab): the members count the first wave's successes, which
// come after its first 429 (the Transport's pace: its bank).
const (
	labMembers = 8
	labCallers = 10
	labCalls   = 2
	labRate    = 50
	labWork    = 5 * time.Millisecond

	// labFirstWave is the first wave: the requests that the members let
	// go this soon after the API's first 429, before any member could
	// hear of the cooldown (a Fleet tells every member within 50 ms).
	// Their 429s are the price of a storm no client saw coming; the lab
	// compares the 429s after it. A request counts by when its Transport
	// let it go (the lab's Base stamps it), not when the API answers: on
	// a loaded machine (the race detector, other builds) part of the
	// first wave waits 100 to 200 ms for its connection to the API, and
	// would count as late although it was sent before anyone knew.
	labFirstWave = 100 * time.Millisecond

	// labSentHeader carries when the Transport let a request go (Unix ns).
	labSentHeader = "X-Lab-Sent"
)

// labResult is what the API saw in one run of the lab.
type labResult struct {
	wall     time.Duration // from the first call to the last answer
	attempts int           // requests the API received
	first429 int           // 429s to the first wave (see labFirstWave)
	later429 int           // every later 429
	failed   int           // calls that ended in an error
	redis    int64         // failures of Redis the members met (Options.OnError)
}

// TestFleetLab runs the lab with members on their own, with a Fleet on
// one redis-server and with a Fleet on a 3-master Redis Cluster, prints
// the figures and checks the targets: with the Fleet, at most a fifth of
// the 429s after the first wave of members on their own (or 5), and a
// wall time within 1.5x of the API's own limit (160 calls at 50/s: 3.2s);
// on the cluster, the same, and a wall time within 10% of one node's. Run
// it with
//
//	cd redisfleet && go test -run TestFleetLab -v
//
// With LAB_BURST set, it runs against that API and only prints.
func TestFleetLab(t *testing.T) {
	noLeaks(t)
	t.Logf("the members' OpTimeout: %v", labOpTimeout())
	alone := runLab(t, nil)
	fleet := runLab(t, startRedis(t))
	cluster := runLab(t, startCluster(t))
	limit := time.Duration(labMembers*labCallers*labCalls) * time.Second / labRate
	for _, r := range []struct {
		name string
		res  labResult
	}{{"on their own", alone}, {"with a Fleet", fleet}, {"with a Fleet on a 3-master cluster", cluster}} {
		t.Logf("%d members x %d callers x %d calls, API at %d/s with bursts of %d (its limit: %v), %s: wall %v, %d attempts, "+
			"429s: %d to the first wave, %d after it; %d calls failed; %d failures of Redis",
			labMembers, labCallers, labCalls, labRate, labBurst(t), limit, r.name, r.res.wall.Round(10*time.Millisecond),
			r.res.attempts, r.res.first429, r.res.later429, r.res.failed, r.res.redis)
	}
	if os.Getenv("LAB_BURST") != "" {
		return // another API than the one the targets are set for: figures only
	}
	// Members on their own pace themselves since issue 19, and draw a
	// fifth of the 429s they did: the Fleet is held to at most a fifth of
	// theirs, or to issue 19's target of 5, whichever is more.
	most := max(alone.later429/5, 5)
	assert.LessOrEqual(t, fleet.later429, most,
		"with a Fleet: %d 429s after the first wave, want at most %d (on their own: %d)", fleet.later429, most, alone.later429)
	assert.LessOrEqual(t, fleet.wall, limit*3/2,
		"with a Fleet: wall time %v, want at most 1.5x the API's limit (%v)", fleet.wall, limit*3/2)
	assert.Zero(t, fleet.failed, "with a Fleet: calls failed")
	assert.InEpsilon(t, fleet.wall.Seconds(), cluster.wall.Seconds(), 0.1,
		"on a cluster: wall time %v, want within 10%% of one node's (%v)", cluster.wall, fleet.wall)
	assert.LessOrEqual(t, cluster.later429, most,
		"on a cluster: %d 429s after the first wave, want at most %d (on their own: %d)", cluster.later429, most, alone.later429)
	assert.Zero(t, cluster.failed, "on a cluster: calls failed")
}

// runLab runs the lab once; s nil means members on their own.
func runLab(t *testing.T, s redisTarget) labResult {
	var (
		mu        sync.Mutex
		res       labResult
		first429  time.Time // when the API answered its first 429
		redisErrs atomic.Int64
	)
	limiter := rate.NewLimiter(labRate, labBurst(t))
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		res.attempts++
		if limiter.Allow() {
			mu.Unlock()
			time.Sleep(labWork)
			return
		}
		defer mu.Unlock()
		if first429.IsZero() {
			first429 = time.Now()
		}
		sent, _ := strconv.ParseInt(r.Header.Get(labSentHeader), 10, 64)
		if time.Unix(0, sent).Sub(first429) < labFirstWave {
			res.first429++
		} else {
			res.later429++
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer api.Close()

	var members []*neuracraft.Transport
	for range labMembers {
		tr := transport(nil)
		tr.Base = stamped{tr.Base}
		if s != nil {
			rdb := s.client(t)
			warmUp(t, rdb, labCallers)
			f := New(rdb, Options{Prefix: "lab", OpTimeout: labOpTimeout(),
				OnError: func(error) { redisErrs.Add(1) }})
			defer f.Close()
			tr.Coordinator = f
		}
		defer tr.CloseIdleConnections()
		members = append(members, tr)
	}
	var wg sync.WaitGroup
	begin := make(chan struct{}) // every caller starts at once
	for m, tr := range members {
		for c := range labCallers {
			wg.Go(func() {
				<-begin
				for call := range labCalls {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := get(ctx, tr, api.URL, fmt.Sprintf("m%d-c%d-%d", m, c, call))
					cancel()
					if err != nil {
						mu.Lock()
						res.failed++
						mu.Unlock()
					}
				}
			})
		}
	}
	start := time.Now()
	close(begin)
	wg.Wait()
	res.wall = time.Since(start)
	res.redis = redisErrs.Load()
	mu.Lock()
	defer mu.Unlock()
	return res
}

// labBurst is how many requests the API's token bucket holds: 20 (two
// fifths of a second's worth) unless LAB_BURST says otherwise, e.g.
// LAB_BURST=1 for an API that takes exactly one request every 20 ms.
func labBurst(t *testing.T) int {
	v := os.Getenv("LAB_BURST")
	if v == "" {
		return 20
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "LAB_BURST=%q: want a positive number", v)
	require.Positive(t, n, "LAB_BURST=%q: want a positive number", v)
	return n
}

// labOpTimeout is the members' OpTimeout: the default, or under the race
// detector the default plus schedulingMargin. The race detector runs the
// 80 callers several times slower on this 2-core machine: in the first
// wave, where each member opens new connections for its held calls at
// once, a Reserve then takes more than 50 ms, and the call that waits for
// it falls back to its own Transport's queue and pace, which the other
// members do not share. Measured on 2026-12-07 under -race: in 3 runs
// with 50 ms, 2 to 44 failures of Redis a run and walls of 4.2 to 10.6 s
// (one node) and 4.2 to 7.8 s (cluster); with 250 ms, 0 failures in 5
// runs and walls of 4.18 to 4.26 s. That is the race detector's cost, not
// the protocol's: without it, 50 ms met no failure in 10 runs.
func labOpTimeout() time.Duration {
	if raceEnabled {
		return DefaultOpTimeout + schedulingMargin
	}
	return DefaultOpTimeout
}

// warmUp opens n connections in rdb's pool to every node, as a member
// that has run a while holds them, so that the first wave's Reserves (as
// many at once as a member has callers) do not dial Redis: the lab
// measures the protocol, not connection set-up. Without it, on this
// 2-core VM, some first-wave Reserves dial for more than OpTimeout (50
// ms) in about half the runs (0 to 17 failures of Redis a run on
// 2026-12-07, on the main branch of before this change as well), fall
// back to their own Transport's queue and pace, and draw a late 429.
func warmUp(t *testing.T, rdb redis.UniversalClient, n int) {
	ctx := context.Background()
	open := func(ctx context.Context, c *redis.Client) error {
		var errs []error
		conns := make([]*redis.Conn, n)
		for i := range conns {
			conns[i] = c.Conn() // a connection of its own, taken from the pool
			errs = append(errs, conns[i].Ping(ctx).Err())
		}
		for _, cn := range conns {
			errs = append(errs, cn.Close()) // back to the pool, idle
		}
		return errors.Join(errs...)
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		require.NoError(t, c.ForEachShard(ctx, open))
	case *redis.Client:
		require.NoError(t, open(ctx, c))
	default:
		t.Fatalf("warmUp: a %T", rdb)
	}
}

// stamped is the Base of the lab's members: it stamps each request with
// the instant it is let go (labSentHeader).
type stamped struct{ base http.RoundTripper }

func (s stamped) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.Header.Set(labSentHeader, strconv.FormatInt(time.Now().UnixNano(), 10))
	return s.base.RoundTrip(out)
}
