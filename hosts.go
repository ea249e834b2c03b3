// This file holds the per-host state of a Transport: hostState, whose
// methods take the time as a parameter, with the retry budget (its
// breaker is in breaker.go, its cooldown in cooldown.go), and hostTable,
// the bounded set of hosts in trouble.

package neuracraft

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxHosts bounds a Transport's host table: past it, the host whose last
// failure (or cooldown) is the oldest is forgotten.
const maxHosts = 1024

// hostConfig is what every hostState of one Transport shares: the
// budget's size and refill, and the least time between two probes.
type hostConfig struct {
	maxTokens, refill float64
	probeInterval     time.Duration
}

// hostState is the budget, breaker and cooldown of one host. Its methods
// that depend on the time take it as a parameter (their names end in At),
// so that tests can name instants; all its fields but calls are guarded by
// mu, which is never held across I/O or a wait.
//
// A call that needs its host's state holds it (hostTable.hold and
// holdOrAddAt) until it ends (hostTable.releaseAt). A held state is always
// its host's entry in the table: the table drops a state only while no
// call holds it.
type hostState struct {
	host string
	cfg  *hostConfig

	// calls counts the calls that hold this state; gone once the table
	// has dropped it, after which no call can hold it (tryHold). A denied
	// call sends a probe only when others may wait for it.
	calls atomic.Int32

	mu sync.Mutex

	// The budget: at half of maxTokens or below, the breaker is open.
	tokens float64

	// The breaker: at most one probe is scheduled or in flight, and none
	// is sent before probeAt.
	probe   *probe
	probeAt time.Time

	// The cooldown: until its end nothing is sent; then the held requests
	// go in the order they came, gapAt apart (pace.go).
	until       time.Time
	fleetUntil  time.Time // a fleet's cooldown that the local queue holds too (holdForFleet)
	span        time.Duration
	cause       Code
	lastRelease time.Time // when the last held request was let go
	head, tail  *holder   // the held requests, in arrival order
	held        int       // how many
	pace        pacer     // the pace of the requests let go (pace.go)

	// The pace last told to an Observer: its gap and its end (paceNewsAt).
	toldGap time.Duration
	toldEnd time.Time

	// The fleet's pace, for an Observer, while a Coordinator paces the
	// host: the gap of the last fleet turn let go at a pace, told until
	// fleetEnd (fleetPaceAt).
	fleetGap time.Duration
	fleetEnd time.Time

	// newer and older link the state into its table's recency list;
	// guarded by the table's mu.
	newer, older *hostState
}

// gone is hostState.calls of a state the table has dropped.
const gone = math.MinInt32

func newHostState(host string, cfg *hostConfig) *hostState {
	return &hostState{host: host, cfg: cfg, tokens: cfg.maxTokens}
}

// tryHold counts one more call holding s, and reports false, counting
// nothing, when the table has dropped s.
func (s *hostState) tryHold() bool {
	for {
		n := s.calls.Load()
		if n < 0 {
			return false
		}
		if s.calls.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// idleAt reports whether s has nothing to keep at now but its budget and
// its pace: no cooldown pending or draining, nobody held, no probe
// scheduled. s.mu must be held.
func (s *hostState) idleAt(now time.Time) bool {
	return s.head == nil && s.probe == nil && !s.nextRelease(now).After(now)
}

// settledAt reports whether the state holds nothing worth keeping at now:
// a full budget, no pace (its own or a fleet's told: pacedAt), no
// cooldown, nobody held or waiting, no call holding it.
func (s *hostState) settledAt(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens >= s.cfg.maxTokens && !s.pacedAt(now) && s.idleAt(now) && s.calls.Load() == 0
}

// retireAt marks s gone, so that no call can hold it again, if at now it
// has nothing to keep (see idleAt) and no call holds it; with settled set,
// its budget must be full and its pace over too (a full table drops a
// paced host, which then meets its limiter afresh). It reports whether s
// is gone, and what an Observer was told of it that no longer holds. The
// check and the mark are one step under s.mu, so that a call cannot
// record a cooldown in between.
func (s *hostState) retireAt(now time.Time, settled bool) (retired bool, lost lostState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.idleAt(now) || (settled && (s.tokens < s.cfg.maxTokens || s.pacedAt(now))) {
		return false, lostState{}
	}
	if !s.calls.CompareAndSwap(0, gone) {
		return false, lostState{}
	}
	return true, lostState{host: s.host, open: s.open(), paced: s.toldGap > 0}
}

// A lostState is what an Observer was told of a host whose state the
// table dropped, and that no longer holds: its breaker is open, or it is
// paced. A call tells it that both ended (call.lost): the host starts
// afresh, with a full budget and no pace.
type lostState struct {
	host        string
	open, paced bool
}

// open reports whether the breaker is open: the budget denies retries.
// s.mu must be held.
func (s *hostState) open() bool { return s.tokens <= s.cfg.maxTokens/2 }

// failed records a retryable failure: it takes a token when charge is
// set, and reports whether the budget still allows a retry, and whether
// this failure opened the breaker (the one place where it opens). The
// budget does not depend on the time: only answers refill it.
func (s *hostState) failed(charge bool) (retryAllowed, opened bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasOpen := s.open()
	if charge {
		s.tokens = max(s.tokens-1, 0)
	}
	return !s.open(), !wasOpen && s.open()
}

// answered records an answer that is not a retryable failure. It puts
// back refill; when the breaker is open it closes it instead (the one
// place where it closes, which it reports), filling the budget, and the
// calls waiting for a probe retry at once.
func (s *hostState) answered() (closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if closed = s.open(); closed {
		s.tokens = s.cfg.maxTokens
		s.probeAt = time.Time{}
	} else if s.tokens += s.cfg.refill; s.tokens > s.cfg.maxTokens-1e-9 {
		s.tokens = s.cfg.maxTokens // no rounding error keeps a host from settling
	}
	if s.probe != nil {
		s.resolve(s.probe, probeSucceeded)
	}
	return closed
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// hostTable holds the states of the hosts in trouble. A host with no
// entry is healthy.
//
// What it keeps. A host gets an entry when it fails, as the newest. Before
// a new entry makes maxHosts or more, the oldest entries with nothing to
// keep are dropped: no call holds them (none is in flight to the host,
// held by its cooldown or waiting for its probe) and no cooldown of theirs
// is pending or draining. An entry that must be kept is made the newest
// instead (it is in use), and passed over. So right after each new entry
// the table holds at most maxHosts entries plus its live ones, and live
// entries are bounded by the calls in flight through the Transport plus
// the hosts whose cooldown has not ended (one this Transport starts lasts
// at most MaxRetryAfter, 60 s by default). A settled entry (full budget, nothing to keep) is dropped
// when its last call ends. Dropping costs one step per entry looked at:
// constant time while the oldest entries are not live.
//
// A call never holds a state that is not its host's entry: the table
// drops a state only while no call holds it, marking it gone in the same
// step, and a gone state cannot be held (hold then looks again). So the
// cooldown or breaker that a call records is the one the next calls find.
//
// How a healthy host is told apart. A call to a healthy host costs one
// atomic load when no host is in trouble; a comparison with the names of
// the hosts in trouble while they are at most fewHosts; and a hash and one
// more atomic load past that: the lookup takes no lock unless the host may
// have an entry. Two plainer designs were measured against this one, and
// neither holds the figures of docs/performance.md. A map behind one
// atomic.Pointer, copied on every new or dropped entry, and a sync.Map
// both hash the host on every lookup: with one host in trouble, a healthy
// call (BenchmarkHealthyHostParallel/id=caller, about 640 instructions)
// ran 169 and 162 instructions more than with none, against 51 here
// (callgrind); in time, the copied map measured +22% and +39% in two
// comparisons of 10 runs (benchstat, p=0.052 and 0.015) where 5% is
// allowed. The copied map also copies up to 1,024 entries for each new
// host: ManyFailingHosts/last-1000 took 128 ms and 55 MiB an op, against
// 28 ms and 2.9 MiB here.
type hostTable struct {
	cfg   hostConfig
	salt  uint64 // of fingerprint, per table
	count atomic.Int32
	added atomic.Uint64 // entries ever created: a call that saw no entry for its host looks again only if this moved
	// few lists the hosts of the table while it has at most fewHosts
	// entries, nil past that; marks counts the entries whose host hashes
	// to each slot. Both are read without a lock: a host not in few, or
	// whose mark is zero, certainly has no entry.
	few   atomic.Pointer[[]string]
	marks [markSlots]atomic.Uint32

	mu             sync.RWMutex // guards m and the recency list
	m              map[string]*hostState
	newest, oldest *hostState

	// beforeHold, when set, runs in hold between the lookup of a state
	// and its count, where another call's end may drop it. Tests set it.
	beforeHold func(*hostState)
}

// fewHosts is how many hosts in trouble hostTable.lookup tells apart from
// a healthy one by comparing names (a length, mostly), before it hashes.
const fewHosts = 8

// markSlots is the size of hostTable.marks: four slots per entry
// (4 * maxHosts), so a healthy host shares a slot with a host in trouble
// about one time in four when the table is full.
const (
	markBits  = 12
	markSlots = 1 << markBits
)

func newHostTable(cfg hostConfig) *hostTable {
	h := &hostTable{cfg: cfg, salt: rand.Uint64(), m: make(map[string]*hostState)}
	h.few.Store(new([]string))
	return h
}

func (h *hostTable) slot(host string) *atomic.Uint32 {
	return &h.marks[fingerprint(host, h.salt)]
}

// fingerprint is a hash of a host name for hostTable.marks, in
// [0, markSlots): its length and its first and last eight bytes, mixed,
// which is cheaper than hashing every byte. Two hosts that share a slot
// cost the healthy one a read lock and a map lookup, never a wrong answer.
func fingerprint(s string, salt uint64) uint64 {
	var head, tail uint64
	if n := len(s); n >= 8 {
		head = le64(s[:8])
		tail = le64(s[n-8:])
	} else {
		for i := 0; i < n; i++ {
			head = head<<8 | uint64(s[i])
		}
	}
	x := (head^salt)*0x9e3779b97f4a7c15 ^ tail ^ uint64(len(s))
	x = (x ^ x>>32) * 0xc2b2ae3d27d4eb4f
	x = (x ^ x>>29) * 0x165667b19e3779f9
	return x >> (64 - markBits) // the top bits, where every input bit has reached
}

// le64 reads the 8 bytes of s as a little-endian number.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// lookup returns host's state, or nil when it has none. The state is not
// held: the table may drop it at any time (see hold).
func (h *hostTable) lookup(host string) *hostState {
	if h.count.Load() == 0 {
		return nil
	}
	if few := h.few.Load(); few != nil {
		if !slices.Contains(*few, host) {
			return nil
		}
	} else if h.slot(host).Load() == 0 {
		return nil
	}
	h.mu.RLock()
	s := h.m[host]
	h.mu.RUnlock()
	return s
}

// hold returns host's state, held by one more call, or nil when host has
// none; found is what lookup(host) returned. (A caller that finds nil need
// not call hold: a healthy host's call stops at the lookup.) A state
// dropped between the lookup and the count refuses to be held, and hold
// looks again.
func (h *hostTable) hold(host string, found *hostState) *hostState {
	for s := found; s != nil; s = h.lookup(host) {
		if h.beforeHold != nil {
			h.beforeHold(s)
		}
		if s.tryHold() {
			return s
		}
	}
	return nil
}

// holdOrAddAt returns host's state, held by one more call, creating it at
// now with a full budget (the newest entry, after trimAt) when host has
// none; lost is what an Observer was told of the entries trimAt dropped
// to make room, if anything.
func (h *hostTable) holdOrAddAt(host string, now time.Time) (_ *hostState, lost []lostState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.m[host]; ok {
		s.calls.Add(1) // an entry is gone only once out of m, under h.mu
		h.unlink(s)
		h.push(s)
		return s, nil
	}
	lost = h.trimAt(now)
	s := newHostState(host, &h.cfg)
	s.calls.Store(1)
	h.m[host] = s
	h.slot(host).Add(1)
	h.count.Add(1)
	h.added.Add(1)
	h.listFew()
	h.push(s)
	return s, lost
}

// touch makes s, held by a call, the newest entry, if it is still its
// host's.
func (h *hostTable) touch(s *hostState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[s.host] == s {
		h.unlink(s)
		h.push(s)
	}
}

// trimAt drops, oldest first, the entries with nothing to keep at now
// until fewer than maxHosts remain, looking at each entry at most once; an
// entry that must be kept is made the newest. It returns what an Observer
// was told of the dropped entries that no longer holds (an open breaker,
// a pace). h.mu must be held.
func (h *hostTable) trimAt(now time.Time) (lost []lostState) {
	for n := len(h.m); n > 0 && len(h.m) >= maxHosts; n-- {
		s := h.oldest
		h.unlink(s)
		if retired, l := s.retireAt(now, false); retired {
			h.drop(s)
			if l.open || l.paced {
				lost = append(lost, l)
			}
		} else {
			h.push(s)
		}
	}
	return lost
}

// releaseAt counts one call fewer holding s, and drops s when it is
// settled at now; lost is what an Observer was told of s that no longer
// holds once it is dropped (a pace that ran out).
func (h *hostTable) releaseAt(s *hostState, now time.Time) (lost lostState) {
	s.calls.Add(-1)
	if s.settledAt(now) { // only then lock the table
		lost = h.forgetAt(s, now)
	}
	return lost
}

// forgetAt drops s if it is still its host's entry and is settled at now,
// and returns what an Observer was told of it that no longer holds.
func (h *hostTable) forgetAt(s *hostState, now time.Time) lostState {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[s.host] != s {
		return lostState{}
	}
	retired, lost := s.retireAt(now, true)
	if retired {
		h.unlink(s)
		h.drop(s)
	}
	return lost
}

// len returns the number of entries.
func (h *hostTable) len() int { return int(h.count.Load()) }

// drop removes s, already out of the recency list and gone. h.mu must be
// held.
func (h *hostTable) drop(s *hostState) {
	delete(h.m, s.host)
	h.slot(s.host).Add(^uint32(0))
	h.count.Add(-1)
	h.listFew()
}

// listFew publishes the list of hosts for lookup while there are at most
// fewHosts, a new one at each change (readers hold the old). h.mu must be
// held.
func (h *hostTable) listFew() {
	if len(h.m) > fewHosts {
		h.few.Store(nil)
		return
	}
	few := make([]string, 0, len(h.m))
	for host := range h.m {
		few = append(few, host)
	}
	h.few.Store(&few)
}

// push makes s the newest entry of the recency list. h.mu must be held.
func (h *hostTable) push(s *hostState) {
	s.older, s.newer = h.newest, nil
	if h.newest != nil {
		h.newest.newer = s
	} else {
		h.oldest = s
	}
	h.newest = s
}

// unlink takes s out of the recency list. h.mu must be held.
func (h *hostTable) unlink(s *hostState) {
	if s.newer != nil {
		s.newer.older = s.older
	} else if h.newest == s {
		h.newest = s.older
	}
	if s.older != nil {
		s.older.newer = s.newer
	} else if h.oldest == s {
		h.oldest = s.newer
	}
	s.newer, s.older = nil, nil
}

// table returns t's host table, or nil when no host was ever in trouble.
func (t *Transport) table() *hostTable { return t.hosts.Load() }

// tableForUpdate returns t's host table, creating it.
func (t *Transport) tableForUpdate() *hostTable {
	if h := t.hosts.Load(); h != nil {
		return h
	}
	maxTokens, refill := t.budget()
	h := newHostTable(hostConfig{maxTokens: maxTokens, refill: refill,
		probeInterval: backoffCeiling(t.Retry.BaseDelay, t.Retry.MaxDelay, 1)})
	if !t.hosts.CompareAndSwap(nil, h) {
		return t.hosts.Load()
	}
	return h
}

func (t *Transport) budget() (maxTokens, refill float64) {
	b := t.Retry.Budget
	maxTokens, refill = b.MaxTokens, b.Refill
	if maxTokens <= 0 {
		maxTokens = defaultBudgetTokens
	}
	if refill <= 0 {
		refill = defaultBudgetRefill
	}
	return maxTokens, refill
}
