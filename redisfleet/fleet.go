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
// process), in the order they asked for their turn; when one of them
// draws a new 429, the gap doubles for the rest of the storm.
//
// Redis is a helper, never a dependency: the success path never touches
// it, every command has a short timeout (OpTimeout), and when Redis is
// slow, down or answers garbage, each replica falls back to its own
// cooldown, reports the trouble to Options.OnError and reconnects by
// itself.
//
// It needs Redis 6.2 or newer (a single node, Sentinel or Cluster), with
// Lua scripting and publish/subscribe.
package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	DefaultMaxRetryAfter = 60 * time.Second // as RetryPolicy.MaxRetryAfter
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
	// slack is how much later than a known cooldown a new one must end
	// to be announced again: a storm of 429s within a few milliseconds
	// costs one announcement.
	slack = 10 * time.Millisecond
	// pingInterval is how long the subscription may stay silent before
	// the Fleet pings Redis; a ping left unanswered for as long again
	// means a dead connection, which the Fleet replaces.
	pingInterval = time.Second
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

	// OpTimeout bounds each Redis operation (one script, or one
	// pipeline): a request never waits longer than this for Redis; past
	// it, the request goes through the Transport's own queue. Zero means
	// DefaultOpTimeout (50 ms).
	OpTimeout time.Duration

	// MaxRetryAfter caps every wait read from Redis or from another
	// member: a garbled or hostile value cannot hold a request longer. A
	// turn further away than this is refused and the request uses the
	// Transport's own queue. Zero means DefaultMaxRetryAfter (60 s, the
	// Transport's default).
	MaxRetryAfter time.Duration

	// RetryInterval is how long a Fleet works without Redis after a
	// failed operation before it tries Redis again, and the pause between
	// two attempts to subscribe again. Zero means DefaultRetryInterval
	// (1 s).
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
	errDown    = errors.New("redisfleet: Redis failed recently, not tried")
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

	born     time.Time
	downTill atomic.Int64 // monotonic ns since born before which Redis is not tried

	lifeMu sync.Mutex // guards closed, ps and wg.Add
	closed bool
	ps     *redis.PubSub
	wg     sync.WaitGroup // the subscriber and the Redis commands in flight
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
}

var _ neuracraft.Coordinator = (*Fleet)(nil)

// New returns a Fleet on rdb (a single node, Sentinel or Cluster client)
// and starts its subscriber. It waits up to three OpTimeouts for the
// subscription and for the cooldowns already recorded in Redis, so that
// a member that starts during a cooldown holds its requests at once; when
// Redis does not answer in time it returns anyway and keeps trying in the
// background. The caller keeps ownership of rdb: close it after the
// Fleet. A nil rdb gives a Fleet that shares nothing.
//
// Commands that time out are abandoned, not interrupted, unless rdb was
// built with ContextTimeoutEnabled; give it a short ReadTimeout or enable
// that option so that they end soon.
func New(rdb redis.UniversalClient, opts Options) *Fleet {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
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
		born:    time.Now(),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if rdb == nil {
		return f
	}
	synced := make(chan struct{})
	f.wg.Add(1)
	go f.subscribe(synced)
	timer := time.NewTimer(3 * opts.OpTimeout)
	defer timer.Stop()
	select {
	case <-synced:
	case <-timer.C:
	}
	return f
}

// Close stops the Fleet's subscriber and waits for it and for the Redis
// commands still in flight (which rdb's ReadTimeout bounds, or
// OpTimeout with ContextTimeoutEnabled). Afterwards the Fleet works
// alone, without Redis, and Close returns nil again.
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
func (f *Fleet) Cooldown(host string) (until time.Time, cause neuracraft.Code, ok bool) {
	if f.live.Load() == 0 {
		return time.Time{}, 0, false
	}
	f.mu.RLock()
	e, found := f.hosts[host]
	f.mu.RUnlock()
	if !found {
		return time.Time{}, 0, false
	}
	now := time.Now()
	if !e.until.After(now) && !e.drain.After(now) {
		f.forget(host, now)
		return time.Time{}, 0, false
	}
	return e.until, e.cause, true
}

// Announce implements [neuracraft.Coordinator]: it records the cooldown
// at once in memory, then in Redis, which tells every member, unless a
// cooldown known already ends at most 10 ms before it. It returns within
// OpTimeout (twice, when the host is new to the fleet's index).
func (f *Fleet) Announce(host string, pause, gap time.Duration, cause neuracraft.Code) {
	if pause <= 0 || !validHost(host) {
		return
	}
	pause = min(pause, f.opt.MaxRetryAfter)
	gap = min(max(gap, 0), maxGap)
	cause = validCause(cause)
	until := time.Now().Add(pause)
	if !f.raise(host, until, time.Time{}, gap, cause, false) {
		return
	}
	res, err := do(f, context.Background(), "announce", func(ctx context.Context) ([]int64, error) {
		return announceScript.Run(ctx, f.rdb, f.keys(host), f.capMicros(), micros(pause), micros(gap),
			int(cause), f.channel, host).Int64Slice()
	})
	if err != nil || len(res) != 3 || res[0] != 1 {
		if err == nil && len(res) != 3 {
			f.report(fmt.Errorf("%w: announce answered %v", ErrGarbled, res))
		}
		f.settleAnnounce(host, until, err == nil)
		return
	}
	f.settleAnnounce(host, until, true)
	f.addToIndex(host, res[1], res[2])
}

// addToIndex records host in the fleet's index of hosts, which members
// read when they (re)subscribe, with the end of its cooldown (server ms);
// entries that have ended, and all but the latest maxHosts, are dropped.
func (f *Fleet) addToIndex(host string, untilMS, nowMS int64) {
	_, _ = do(f, context.Background(), "index", func(ctx context.Context) (struct{}, error) {
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAddGT(ctx, f.index, redis.Z{Score: float64(untilMS), Member: host})
			p.ZRemRangeByScore(ctx, f.index, "-inf", strconv.FormatInt(nowMS-1000, 10))
			p.ZRemRangeByRank(ctx, f.index, 0, -maxHosts-1)
			p.PExpire(ctx, f.index, f.opt.MaxRetryAfter+time.Minute)
			return nil
		})
		return struct{}{}, err
	})
}

// Reserve implements [neuracraft.Coordinator]: one script in Redis takes
// the request's turn in the fleet's release queue. It also records in
// Redis a cooldown this member knows and Redis does not (after a lost
// announcement or a restart of Redis). It fails, and the request uses the
// Transport's own queue, when Redis does not answer within OpTimeout,
// answers garbage, or gives a turn further than MaxRetryAfter.
func (f *Fleet) Reserve(ctx context.Context, host string) (neuracraft.Turn, error) {
	if !validHost(host) {
		return neuracraft.Turn{}, fmt.Errorf("redisfleet: host %q not shared", host)
	}
	f.mu.RLock()
	e := f.hosts[host]
	f.mu.RUnlock()
	start := time.Now()
	hint := max(e.until.Sub(start), 0)
	gap := e.gap
	if gap <= 0 {
		gap = defaultGap
	}
	maxWait := int64(-1)
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		maxWait = max(micros(deadline.Sub(start)), 0)
	}
	res, err := do(f, ctx, "reserve", func(ctx context.Context) ([]int64, error) {
		return reserveScript.Run(ctx, f.rdb, f.keys(host), f.capMicros(), micros(hint), micros(gap),
			int(validCause(e.cause)), maxWait, f.channel, host).Int64Slice()
	})
	if err != nil {
		return neuracraft.Turn{}, err
	}
	now := time.Now()
	limit := micros(f.opt.MaxRetryAfter)
	if len(res) != 6 || res[0] < 0 || res[0] > 1 || res[1] < 0 || res[1] > limit || res[2] <= 0 {
		err := fmt.Errorf("%w: reserve for %s answered %v", ErrGarbled, host, res)
		f.report(err)
		return neuracraft.Turn{}, err
	}
	f.raise(host, now.Add(capped(res[3], limit)), now.Add(capped(res[4], limit)), gap, e.cause, true)
	wait := fromMicros(res[1])
	if res[0] == 0 { // not taken: its turn comes after the deadline
		return neuracraft.Turn{Wait: max(wait, deadline.Sub(now)+time.Microsecond)}, nil
	}
	if res[5] == 1 {
		f.addToIndex(host, (res[2]-res[1]+res[3])/1000, (res[2]-res[1])/1000)
	}
	// The wait was measured at the server, about half the round trip ago.
	return neuracraft.Turn{Wait: max(wait-now.Sub(start)/2, 0), ID: res[2]}, nil
}

// defaultGap is the gap Reserve proposes for a queue whose gap neither
// the member nor Redis knows: the Transport's longest.
const defaultGap = 10 * time.Millisecond

// Cancel implements [neuracraft.Coordinator]: it gives turn back in Redis.
// The last turn handed out is taken back (the next caller gets it); an
// earlier one becomes a hole that the next caller takes. So a turn given
// back costs nobody a gap, except when Redis cannot be reached: then at
// most one gap (10 ms) per turn is lost, until the queue drains.
func (f *Fleet) Cancel(host string, turn neuracraft.Turn) {
	if turn.ID <= 0 || !validHost(host) {
		return
	}
	_, _ = do(f, context.Background(), "cancel", func(ctx context.Context) (int64, error) {
		return cancelScript.Run(ctx, f.rdb, f.keys(host), f.capMicros(), turn.ID, maxHoles).Int64()
	})
}
