// Package redisfleet shares the cooldown of a [neuracraft.Transport]
// among the replicas of a service through Redis, so that a fleet that
// shares one NeuraCraft API key, and so one rate limit, backs off as one.
//
// A [Fleet] is a [neuracraft.Coordinator]: set it as Transport.Coordinator
// in every replica, with the same Redis and the same Prefix. When one
// replica gets a 429 or 503 whose Retry-After it honours, every replica
// holds its requests to that host until the pause ends (told within
// milliseconds by publish/subscribe, and kept in a key that expires with
// the pause for replicas that start meanwhile). Then the requests held
// across the fleet go one after another, one gap apart (10 ms, as in one
// process), in the order they asked for their turn, on the Redis server's
// clock: each held request asks for its turn once, and again only when a
// new cooldown starts before it goes; it then keeps its place. When one of
// them draws a new 429, the gap doubles for the rest of the storm.
//
// Redis is a helper, never a dependency: the success path never touches
// it, a request waits on Redis at most OpTimeout in all, and when Redis is
// slow, down or answers garbage, each replica falls back to its own
// cooldown, reports the trouble to Options.OnError, and leaves Redis
// alone until it answers a ping again.
//
// It needs Redis 6.2 or newer (a single node, Sentinel or Cluster), with
// Lua scripting and publish/subscribe.
package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/redis/go-redis/v9"
)

// Defaults of [Options], used for zero fields.
const (
	DefaultPrefix        = "neuracraft"
	DefaultOpTimeout     = 50 * time.Millisecond
	DefaultRetryInterval = time.Second
)

const (
	// maxHosts bounds the hosts a Fleet keeps in memory and reads back
	// when it (re)subscribes; a flood of announcements cannot grow it.
	maxHosts = 1024
	// maxHoles bounds the slots given back that Redis keeps per host.
	maxHoles = 1000
	// maxGap caps a release gap read from Redis.
	maxGap = time.Second
	// maxPause bounds every pause the fleet records or reads from Redis
	// or the channel; a longer value is garbled. Each call waits for the
	// fleet at most its own Transport's MaxRetryAfter anyway.
	maxPause = time.Hour
	// slack is how much later than a known cooldown a new one must end
	// to be a new cooldown: a storm of 429s within a few milliseconds
	// costs one announcement, one epoch.
	slack = 10 * time.Millisecond
	// pingInterval is how long the subscription may stay silent before
	// the Fleet pings Redis; a ping left unanswered for as long again
	// means a dead connection, which the Fleet replaces.
	pingInterval = time.Second
	// maxJobs bounds the work (index updates, turns given back) waiting
	// for the Fleet's background goroutine.
	maxJobs = 256
)

// Options configure a [Fleet]. The zero value uses the defaults given
// with each field.
type Options struct {
	// Prefix namespaces every key and the channel of the Fleet: members
	// with the same Prefix on the same Redis form one fleet. Keys are
	// "{Prefix:host}:cooldown" and "{Prefix:host}:holes" (one hash slot
	// per host, for Redis Cluster), plus "Prefix:hosts"; the channel is
	// "Prefix:cooldowns". Empty means DefaultPrefix ("neuracraft").
	Prefix string

	// OpTimeout bounds the time one request spends waiting on Redis, all
	// its Fleet operations together (its announcement and its turns):
	// past it, the request goes on alone, through its Transport's own
	// cooldown and queue. Zero means DefaultOpTimeout (50 ms).
	OpTimeout time.Duration

	// RetryInterval is the longest pause between two pings of a Redis
	// considered down (after an operation failed): a Fleet pings it from
	// its own goroutine OpTimeout after the failure, then twice as long
	// after each ping left unanswered, up to RetryInterval; the first
	// answer within OpTimeout ends the outage. Requests do not touch Redis
	// meanwhile. It is also the pause between two attempts to subscribe
	// again. Zero means DefaultRetryInterval (1 s).
	RetryInterval time.Duration

	// OnError, when set, is called with each failure of Redis (timeouts,
	// lost connections, garbled answers), on the goroutine that met it,
	// which may be a request's. It must not block. nil drops them.
	OnError func(error)
}

// ErrGarbled is reported (through Options.OnError) when Redis or another
// member sent a value a Fleet cannot use; the value is ignored.
var ErrGarbled = errors.New("redisfleet: garbled value from Redis")

var (
	errClosed  = errors.New("redisfleet: fleet closed")
	errDown    = errors.New("redisfleet: Redis is down (it failed, and has not answered a ping since), not tried")
	errSpent   = errors.New("redisfleet: the request's time for Redis (OpTimeout) is spent, not tried")
	errNoRedis = errors.New("redisfleet: no Redis client")
)

// A Fleet shares cooldowns and release turns among the members of a
// fleet through Redis; it implements [neuracraft.Coordinator]. Create it
// with [New], set it as the Coordinator of a [neuracraft.Transport], and
// Close it when done. A Fleet is safe for concurrent use and may serve
// several Transports.
//
// What goes into Redis is only host names (req.URL.Host), durations and
// instants of the Redis server's clock, and the status (429 or 503):
// never URLs, queries, headers, credentials or bodies.
type Fleet struct {
	rdb     redis.UniversalClient
	opt     Options
	channel string
	index   string

	mu    sync.RWMutex
	hosts map[string]entry // cooldowns and queues known to be pending
	live  atomic.Int32     // len(hosts), read without mu on the success path

	down atomic.Bool   // Redis failed and has not answered a ping since
	wake chan struct{} // tells the background goroutine that Redis went down
	news chan job      // announcements to send (upkeep.go)
	jobs chan job      // other work off the request path (upkeep.go)

	lifeMu sync.Mutex // guards closed, ps and wg.Add
	closed bool
	ps     *redis.PubSub
	wg     sync.WaitGroup // the subscriber, the upkeep and the Redis commands in flight
	ctx    context.Context
	cancel context.CancelFunc
}

// entry is what a member knows of one host's fleet state, in its own
// clock.
type entry struct {
	until time.Time // end of the cooldown
	// shared is the latest end of the cooldown that the fleet is known
	// to hold: written to Redis by this member, or read from it; pending
	// is the end being announced now. An announcement that did not reach
	// Redis clears pending and leaves shared as it was, so the next one
	// for the host is sent again rather than taken for a repeat.
	shared, pending time.Time
	drain           time.Time     // end of the release queue, as last seen
	gap             time.Duration // between two release slots
	cause           neuracraft.Code
	epoch           int64 // the latest epoch learnt from Redis
}

var _ neuracraft.Coordinator = (*Fleet)(nil)

// New returns a Fleet on rdb (a single node, Sentinel or Cluster client)
// and starts its goroutines. It waits up to three OpTimeouts for the
// subscription and for the cooldowns already recorded in Redis, so that
// a member that starts during a cooldown holds its requests at once; when
// Redis does not answer in time it returns anyway and keeps trying in the
// background. The caller keeps ownership of rdb: close it after the
// Fleet. A nil rdb gives a Fleet that shares nothing.
//
// Build rdb with ContextTimeoutEnabled: then every command of the Fleet,
// and Close, end within OpTimeout. Without it, a command that times out is
// abandoned but runs on until rdb's ReadTimeout, and Close waits for it.
func New(rdb redis.UniversalClient, opts Options) *Fleet {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	f := &Fleet{
		rdb:     rdb,
		opt:     opts,
		channel: opts.Prefix + ":cooldowns",
		index:   opts.Prefix + ":hosts",
		hosts:   make(map[string]entry),
		wake:    make(chan struct{}, 1),
		news:    make(chan job, maxJobs),
		jobs:    make(chan job, maxJobs),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if rdb == nil {
		return f
	}
	synced := make(chan struct{})
	f.wg.Add(2)
	go f.subscribe(synced)
	go f.upkeep()
	timer := time.NewTimer(3 * opts.OpTimeout)
	defer timer.Stop()
	select {
	case <-synced:
	case <-timer.C:
	}
	return f
}

// Close stops the Fleet's goroutines and waits for them and for the
// Redis commands still in flight: within OpTimeout when rdb was built
// with ContextTimeoutEnabled, whatever Redis does. Afterwards the Fleet
// works alone, without Redis, and Close returns nil again.
func (f *Fleet) Close() error {
	f.lifeMu.Lock()
	if f.closed {
		f.lifeMu.Unlock()
		return nil
	}
	f.closed = true
	f.cancel()
	ps := f.ps
	f.lifeMu.Unlock()
	if ps != nil {
		_ = ps.Close() // ends a Receive in progress
	}
	f.wg.Wait()
	return nil
}

// Cooldown implements [neuracraft.Coordinator]: it reports, from memory,
// a cooldown of host known in the fleet, or a release queue of host that
// has not drained. It does no I/O and does not allocate.
func (f *Fleet) Cooldown(host string) (neuracraft.Cooldown, bool) {
	if f.live.Load() == 0 {
		return neuracraft.Cooldown{}, false
	}
	f.mu.RLock()
	e, found := f.hosts[host]
	f.mu.RUnlock()
	if !found {
		return neuracraft.Cooldown{}, false
	}
	now := time.Now()
	if !e.until.After(now) && !e.drain.After(now) {
		f.forget(host, now)
		return neuracraft.Cooldown{}, false
	}
	return neuracraft.Cooldown{Until: e.until, Gap: e.gap, Cause: e.cause, Epoch: e.epoch}, true
}

// Announce implements [neuracraft.Coordinator]: it records the cooldown
// at once in memory, and hands it to the Fleet's own goroutine, which
// records it in Redis and so tells every member, unless a cooldown known
// already ends at most 10 ms before it. The request does not wait on
// Redis for it (p.Spent does not change); a turn it asks for meanwhile
// comes no earlier than its own Transport's cooldown (Hold.Floor), and
// records the cooldown if Redis has none.
func (f *Fleet) Announce(host string, p neuracraft.Pause) {
	if p.RetryAfter <= 0 || !validHost(host) {
		return
	}
	pause := min(p.RetryAfter, maxPause)
	gap := validGap(p.Gap)
	cause := validCause(p.Cause)
	until := time.Now().Add(pause)
	if !f.raise(host, state{until: until, gap: gap, cause: cause}, false) {
		return
	}
	if !f.enqueue(job{host: host, news: state{until: until, gap: gap, cause: cause}}) {
		f.settleAnnounce(host, until, false)
	}
}

// announce records in Redis the cooldown news of host that this member
// learnt, and learns the fleet's state back; it runs on the Fleet's own
// goroutine.
func (f *Fleet) announce(host string, news state) {
	start := time.Now()
	pause := news.until.Sub(start)
	if pause <= 0 {
		f.settleAnnounce(host, news.until, false)
		return
	}
	res, err := do(f, f.ctx, "announce", 0, func(ctx context.Context) ([]int64, error) {
		return announceScript.Run(ctx, f.rdb, f.keys(host), micros(maxPause), micros(pause), micros(news.gap),
			int(news.cause), f.channel, host, micros(slack)).Int64Slice()
	})
	if err == nil && (len(res) != 7 || res[0] < 0 || res[0] > 1) {
		err = fmt.Errorf("%w: announce answered %v", ErrGarbled, res)
		f.report(err)
	}
	f.settleAnnounce(host, news.until, err == nil)
	if err != nil {
		return
	}
	st, ok := f.stateAt(time.Now().Add(-time.Since(start)/2), res[1], res[2], res[3], res[4], res[5])
	if !ok {
		f.report(fmt.Errorf("%w: announce answered %v", ErrGarbled, res))
		return
	}
	f.raise(host, st, true)
	if res[0] == 1 {
		f.addToIndex(host, res[6]+res[2]/1000, res[6])
	}
}

// Reserve implements [neuracraft.Coordinator]: one script in Redis takes
// the request's turn in the fleet's release queue, or its moved place
// when h.Requeue is set. When Redis holds no state for host (it expired,
// or Redis lost it) it records the cooldown this member knows; a state
// Redis holds is never changed by what the member knows. It fails, and
// the request uses the Transport's own queue, when Redis does not answer
// within OpTimeout less h.Spent, is down, or answers garbage.
func (f *Fleet) Reserve(ctx context.Context, host string, h neuracraft.Hold) (neuracraft.Turn, error) {
	if !validHost(host) {
		return neuracraft.Turn{}, fmt.Errorf("redisfleet: host %q not shared", host)
	}
	f.mu.RLock()
	e := f.hosts[host]
	f.mu.RUnlock()
	start := time.Now()
	known := min(max(e.until.Sub(start), 0), maxPause)
	gap := validGap(e.gap)
	maxWait := int64(-1) // no limit
	if h.MaxWait > 0 {
		maxWait = micros(h.MaxWait)
	}
	if deadline, ok := ctx.Deadline(); ok && (maxWait < 0 || deadline.Sub(start) < h.MaxWait) {
		maxWait = max(micros(deadline.Sub(start)), 0)
	}
	floor := min(max(h.Floor, 0), maxPause)
	res, err := do(f, ctx, "reserve", h.Spent, func(ctx context.Context) ([]int64, error) {
		return reserveScript.Run(ctx, f.rdb, f.keys(host), micros(maxPause), micros(floor), maxWait,
			max(h.Requeue.ID, 0), h.Requeue.Epoch, micros(known), micros(gap), int(validCause(e.cause)),
			f.channel, host).Int64Slice()
	})
	if err != nil {
		return neuracraft.Turn{}, err
	}
	rtt := time.Since(start)
	if len(res) != 9 || res[0] < 0 || res[0] > 1 || res[1] < 0 || res[1] > micros(maxPause) || res[2] <= 0 {
		err := fmt.Errorf("%w: reserve for %s answered %v", ErrGarbled, host, res)
		f.report(err)
		return neuracraft.Turn{}, err
	}
	// The server's now was about half the round trip ago.
	st, ok := f.stateAt(time.Now().Add(-rtt/2), res[3], res[4], res[5], res[6], res[7])
	if !ok {
		err := fmt.Errorf("%w: reserve for %s answered %v", ErrGarbled, host, res)
		f.report(err)
		return neuracraft.Turn{}, err
	}
	f.raise(host, st, true)
	if res[8] == 1 {
		nowMS := (res[2] - res[1]) / 1000 // the slot less the wait: the server's now
		f.enqueue(job{host: host, untilMS: nowMS + res[4]/1000, nowMS: nowMS})
	}
	// The wait is the server's, from its now: counted from the answer's
	// arrival, the turn comes late by the answer's trip, never early.
	turn := neuracraft.Turn{Wait: fromMicros(res[1]), Epoch: st.epoch, Gap: st.gap}
	if res[0] == 1 {
		turn.ID = res[2]
	}
	return turn, nil
}

// Cancel implements [neuracraft.Coordinator]: it gives turn back in Redis,
// from the Fleet's own goroutine, so the request that gives up does not
// wait. The last turn handed out is taken back (the next caller gets
// it); an earlier one becomes a hole that the next caller takes. So a
// turn given back costs nobody a gap, except when Redis cannot be
// reached: then at most one gap (10 ms) per turn is lost, until the
// queue drains.
func (f *Fleet) Cancel(host string, turn neuracraft.Turn) {
	if turn.ID <= 0 || !validHost(host) {
		return
	}
	f.enqueue(job{host: host, cancel: turn})
}
