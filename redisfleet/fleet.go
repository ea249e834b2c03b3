// Package redisfleet shares the cooldown and the pace of a
// [neuracraft.Transport] among the replicas of a service through Redis, so
// that a fleet that shares one NeuraCraft API key, and so one rate limit,
// backs off and comes back as one.
//
// A [Fleet] is a [neuracraft.Coordinator]: set it as Transport.Coordinator
// in every replica, with the same Redis and the same Prefix. When one
// replica gets a 429 or 503 whose Retry-After it honours, every replica
// holds its requests to that host until the pause ends (told within
// milliseconds by publish/subscribe, and kept in Redis for replicas that
// start meanwhile). Then the requests held across the fleet go one after
// another, in the order they asked for their turn, on the Redis server's
// clock, at one pace for the whole fleet: the adaptive pace a Transport
// keeps in one process (a slow start from 50 ms gaps, cut by a 429 met
// at the pace, held, and ended 30 s after the last pushback), kept in
// Redis and learnt from every member's answers. While it holds, every
// request to the host takes a turn of the fleet's queue. Each held
// request asks for its turn once, and again only when a new cooldown
// starts before it goes; it then keeps its place.
//
// Redis is a helper, never a dependency: the success path of a host that
// is not paced never touches it, a request waits on Redis at most
// OpTimeout in all, and when Redis is slow, down or answers garbage, each
// replica falls back to its own queue and pace (which still hold the
// cooldowns the replica knows of, its own and those the fleet told it
// before), reports the trouble to Options.OnError, and leaves Redis alone
// until it answers a ping again.
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
	"github.com/neuracraft/neuracraft-go/internal/limits"
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
	// maxTurns bounds the turns of one host that Redis remembers (their
	// slots, for turns asked again after a new cooldown, and the count of
	// the pace's cut): past it the oldest are forgotten, and a turn asked
	// again then takes a new place at the end.
	maxTurns = 4096
	// maxGap caps a gap read from Redis or the channel: the pace's
	// longest, limits.PaceMaxGap (1 s).
	maxGap = limits.PaceMaxGap
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

// paceArgs are the arguments every script takes after its bound on
// instants (luaPrelude): the constants of the root package's pace
// (instants in µs, gaps in ns), so that the fleet paces by the same
// numbers, and maxTurns.
var paceArgs = []any{int64(limits.PaceStartGap), limits.PaceStartWins, int64(limits.PaceStartEnd),
	micros(limits.PaceHold), limits.PaceProbeWins, micros(limits.PaceQuiet), int64(limits.PaceMinGap),
	int64(limits.PaceMaxGap), maxTurns, limits.PaceClimb, limits.PaceCut, limits.PaceMinBank,
	int64(limits.PaceLinStartGap)}

// Options configure a [Fleet]. The zero value uses the defaults given
// with each field.
type Options struct {
	// Prefix namespaces every key and the channel of the Fleet: members
	// with the same Prefix on the same Redis form one fleet. Keys are
	// "{Prefix:host}:cooldown", "{Prefix:host}:turns",
	// "{Prefix:host}:tickets" and "{Prefix:host}:holes" (one hash slot per
	// host, for Redis Cluster), plus "Prefix:hosts"; the channel is
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

// A Fleet shares cooldowns, release turns and the pace among the members
// of a fleet through Redis; it implements [neuracraft.Coordinator]. Create
// it with [New], set it as the Coordinator of a [neuracraft.Transport],
// and Close it when done. A Fleet is safe for concurrent use and may
// serve several Transports.
//
// What goes into Redis is only host names (req.URL.Host), durations and
// instants of the Redis server's clock, turn numbers, and the status (429
// or 503): never URLs, queries, headers, credentials or bodies.
type Fleet struct {
	rdb     redis.UniversalClient
	opt     Options
	channel string
	index   string
	pace    []any // paceArgs, but in tests

	mu    sync.RWMutex
	hosts map[string]entry // cooldowns, queues and paces known to be pending
	live  atomic.Int32     // len(hosts), read without mu on the success path

	down     atomic.Bool   // Redis failed and has not answered a ping since
	answered atomic.Int64  // when Redis last answered a command (Unix ns)
	wake     chan struct{} // tells the background goroutine that Redis went down
	news     chan job      // announcements to send (upkeep.go)
	jobs     chan job      // other work off the request path (upkeep.go)

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
	paced           time.Time     // end of the fleet's pace, as last seen
	gap             time.Duration // the pace's gap, or the release gap while not paced
	cause           neuracraft.Code
	epoch           int64 // the latest epoch learnt from Redis
}

var _ neuracraft.Coordinator = (*Fleet)(nil)

// New returns a Fleet on rdb (a single node, Sentinel or Cluster client)
// and starts its goroutines. It waits up to three OpTimeouts for the
// subscription and for the cooldowns and paces already recorded in Redis,
// so that a member that starts during a cooldown holds its requests at
// once; when Redis does not answer in time it returns anyway and keeps
// trying in the background. The caller keeps ownership of rdb: close it
// after the Fleet. A nil rdb gives a Fleet that shares nothing.
//
// Build rdb with ContextTimeoutEnabled: then every command of the Fleet,
// and Close, end within OpTimeout. Without it, a command that times out is
// abandoned but runs on until rdb's ReadTimeout, and Close waits for it.
func New(rdb redis.UniversalClient, opts Options) *Fleet {
	return newFleet(rdb, opts, paceArgs)
}

// newFleet is New with the pace's constants given (paceArgs; tests
// shorten the hold).
func newFleet(rdb redis.UniversalClient, opts Options, pace []any) *Fleet {
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
		pace:    pace,
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
// a cooldown of host known in the fleet, a release queue of host that has
// not drained, or a pace of the fleet for host that still holds (while
// it does, every request to host takes a turn). It does no I/O and does
// not allocate.
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
	if !e.until.After(now) && !e.drain.After(now) && !e.paced.After(now) {
		f.forget(host, now)
		return neuracraft.Cooldown{}, false
	}
	return neuracraft.Cooldown{Until: e.until, Gap: e.gap, Cause: e.cause, Epoch: e.epoch}, true
}

// Announce implements [neuracraft.Coordinator]: it records the cooldown
// at once in memory (and that the fleet now paces host), and hands it to
// the Fleet's own goroutine, which records it in Redis and so tells every
// member, unless a cooldown known already ends at most 10 ms before it and
// the answer did not come to a turn at the fleet's pace (p.Turn with a
// Gap: then Redis learns of it in any case, for the pace). The request
// does not wait on Redis for it (p.Spent does not change); a turn it asks
// for meanwhile comes no earlier than its own Transport's cooldown
// (Hold.Floor), and records the cooldown if Redis has none.
func (f *Fleet) Announce(host string, p neuracraft.Pause) {
	if p.RetryAfter <= 0 || !validHost(host) {
		return
	}
	pause := min(p.RetryAfter, maxPause)
	gap := validGap(p.Gap)
	cause := validCause(p.Cause)
	now := time.Now()
	until := now.Add(pause)
	news := state{until: until, paced: now.Add(limits.PaceQuiet), gap: gap, cause: cause}
	ticket := p.Turn.ID > 0 && p.Turn.Gap > 0
	if !f.raise(host, news, false) && !ticket {
		return
	}
	if ticket {
		news.ticket = p.Turn
	}
	if !f.enqueue(job{host: host, news: news}) {
		f.settleAnnounce(host, until, false)
	}
}

// announce records in Redis the pushback news of host that this member
// learnt, and learns the fleet's state back; it runs on the Fleet's own
// goroutine. The host goes into the index first, so that a member that
// subscribes after the announcement's message finds it there.
func (f *Fleet) announce(host string, news state) {
	if pause := time.Until(news.until); pause <= 0 || !f.addToIndex(host, max(pause, limits.PaceQuiet)) {
		f.settleAnnounce(host, news.until, false)
		return
	}
	start := time.Now()
	res, err := do(f, f.ctx, "announce", 0, func(ctx context.Context) ([]int64, error) {
		// The pause left when the script is sent, as Reserve counts the
		// cooldown it may record: both land within slack of each other.
		pause := max(time.Until(news.until), time.Microsecond)
		return announceScript.Run(ctx, f.rdb, f.keys(host), f.args(micros(pause), micros(news.gap),
			int(news.cause), f.channel, host, micros(slack), news.ticket.ID, news.ticket.Epoch,
			int64(news.ticket.Gap))...).Int64Slice()
	})
	if err == nil && (len(res) != 8 || res[0] < 0 || res[0] > 1) {
		err = fmt.Errorf("%w: announce answered %v", ErrGarbled, res)
		f.report(err)
	}
	f.settleAnnounce(host, news.until, err == nil)
	if err != nil {
		return
	}
	st, ok := f.stateAt(time.Now().Add(-time.Since(start)/2), res[1], res[2], res[3], res[4], res[5], res[7])
	if !ok {
		f.report(fmt.Errorf("%w: announce answered %v", ErrGarbled, res))
		return
	}
	f.raise(host, st, true)
}

// Reserve implements [neuracraft.Coordinator]: one script in Redis takes
// the request's turn in the fleet's release queue at the fleet's pace,
// or its moved place when h.Requeue is set. When Redis holds no state for
// host (it expired, or Redis lost it) it records the cooldown this member
// knows; a state Redis holds is never changed by what the member knows.
// It fails, and the request uses the Transport's own queue, when Redis
// does not answer within OpTimeout less h.Spent, is down, or answers
// garbage.
func (f *Fleet) Reserve(ctx context.Context, host string, h neuracraft.Hold) (neuracraft.Turn, error) {
	if !validHost(host) {
		return neuracraft.Turn{}, fmt.Errorf("redisfleet: host %q not shared", host)
	}
	f.mu.RLock()
	e := f.hosts[host]
	f.mu.RUnlock()
	start := time.Now()
	known := min(max(e.until.Sub(start), 0), maxPause)
	maxWait := int64(-1) // no limit
	if h.MaxWait > 0 {
		maxWait = micros(h.MaxWait)
	}
	if deadline, ok := ctx.Deadline(); ok && (maxWait < 0 || deadline.Sub(start) < h.MaxWait) {
		maxWait = max(micros(deadline.Sub(start)), 0)
	}
	floor := min(max(h.Floor, 0), maxPause)
	res, err := do(f, ctx, "reserve", h.Spent, func(ctx context.Context) ([]int64, error) {
		return reserveScript.Run(ctx, f.rdb, f.keys(host), f.args(micros(floor), maxWait,
			max(h.Requeue.ID, 0), micros(known), micros(validGap(e.gap)), int(validCause(e.cause)),
			f.channel, host, micros(slack), max(h.Admitted, 0))...).Int64Slice()
	})
	if err != nil {
		return neuracraft.Turn{}, err
	}
	rtt := time.Since(start)
	if len(res) != 11 || res[0] < 0 || res[0] > 1 || res[1] < 0 || res[1] > micros(maxPause) || res[2] < 0 ||
		res[9] < 0 || res[9] > int64(maxGap) {
		err := fmt.Errorf("%w: reserve for %s answered %v", ErrGarbled, host, res)
		f.report(err)
		return neuracraft.Turn{}, err
	}
	// The server's now was about half the round trip ago.
	st, ok := f.stateAt(time.Now().Add(-rtt/2), res[3], res[4], res[5], res[6], res[7], res[10])
	if !ok {
		err := fmt.Errorf("%w: reserve for %s answered %v", ErrGarbled, host, res)
		f.report(err)
		return neuracraft.Turn{}, err
	}
	f.raise(host, st, true)
	if res[8] == 1 {
		f.enqueue(job{host: host, index: max(st.until.Sub(start), limits.PaceQuiet)})
	}
	// The wait is the server's, from its now: counted from the answer's
	// arrival, the turn comes late by the answer's trip, never early.
	turn := neuracraft.Turn{Wait: fromMicros(res[1]), Epoch: st.epoch, Gap: time.Duration(res[9])}
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
// reached: then at most one gap per turn is lost, until the queue drains.
// A Reserve given up while its script runs (the request's context ended,
// or OpTimeout ran out) returns no turn to give back: if the script ran,
// that turn is one gap for nobody.
func (f *Fleet) Cancel(host string, turn neuracraft.Turn) {
	if turn.ID <= 0 || !validHost(host) {
		return
	}
	f.enqueue(job{host: host, cancel: turn})
}

// args are the arguments of a script: its bound on instants, the pace's
// constants, then rest.
func (f *Fleet) args(rest ...any) []any {
	args := make([]any, 0, 1+len(f.pace)+len(rest))
	args = append(args, micros(maxPause))
	args = append(args, f.pace...)
	return append(args, rest...)
}
