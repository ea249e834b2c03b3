// This file holds the per-host state of a Transport: hostState (the retry
// budget with its circuit breaker, and the shared cooldown with its release
// queue), whose methods take the time as a parameter, and hostTable, the
// bounded set of hosts in trouble.

package neuracraft

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// maxHosts bounds a Transport's host table: past it, the host whose last
// failure (or cooldown) is the oldest is forgotten.
const maxHosts = 1024

// maxReleaseGap caps releaseGap: a long pause does not mean the server can
// take less once it is over. 10 ms lets through about one request more
// than the server's limit for each 10 ms of round trip, before the first
// 429 of the next cooldown comes back.
const maxReleaseGap = 10 * time.Millisecond

// releaseGap is the time between two requests let go after a cooldown of
// length span: a hundredth of it, and at most maxReleaseGap, so held
// requests go at 100 a second or faster, in the order they came.
func releaseGap(span time.Duration) time.Duration { return min(span/100, maxReleaseGap) }

// hostConfig is what every hostState of one Transport shares: the
// budget's size and refill, and the least time between two probes.
type hostConfig struct {
	maxTokens, refill float64
	probeInterval     time.Duration
}

// hostState is the budget, breaker and cooldown of one host. Its methods
// take the current time, so that tests can name instants; all its fields
// but calls are guarded by mu, which is never held across I/O or a wait.
//
// A call that waits (for its turn after a cooldown, or for a probe) holds
// on to the hostState it found, so it is woken by this state even if the
// table has forgotten it meanwhile.
type hostState struct {
	host string
	cfg  *hostConfig

	// calls counts the calls in flight that hold this state (those that
	// started while the host had an entry, or failed since): a denied
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
	// go in the order they came, releaseGap(span) apart.
	until       time.Time
	span        time.Duration
	cause       Code
	lastRelease time.Time // when the last held request was let go
	head, tail  *holder   // the held requests, in arrival order
	held        int       // how many

	// newer and older link the state into its table's recency list;
	// guarded by the table's mu.
	newer, older *hostState
}

func newHostState(host string, cfg *hostConfig) *hostState {
	return &hostState{host: host, cfg: cfg, tokens: cfg.maxTokens}
}

// settledAt reports whether the state holds nothing worth keeping at now:
// a full budget, no cooldown, nobody held or waiting, no call in flight.
func (s *hostState) settledAt(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens >= s.cfg.maxTokens && s.probe == nil && s.head == nil &&
		!s.until.After(now) && !s.lastRelease.Add(releaseGap(s.span)).After(now) &&
		s.calls.Load() == 0
}

// open reports whether the breaker is open: the budget denies retries.
// s.mu must be held.
func (s *hostState) open() bool { return s.tokens <= s.cfg.maxTokens/2 }

// failedAt records a retryable failure at now: it takes a token when
// charge is set, and reports whether the budget still allows a retry.
func (s *hostState) failedAt(now time.Time, charge bool) (retryAllowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if charge {
		s.tokens = max(s.tokens-1, 0)
	}
	return !s.open()
}

// answeredAt records an answer that is not a retryable failure at now. It
// puts back refill; when the breaker is open it closes it instead, filling
// the budget, and the calls waiting for a probe retry at once.
func (s *hostState) answeredAt(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open() {
		s.tokens = s.cfg.maxTokens
		s.probeAt = time.Time{}
	} else if s.tokens += s.cfg.refill; s.tokens > s.cfg.maxTokens-1e-9 {
		s.tokens = s.cfg.maxTokens // no rounding error keeps a host from settling
	}
	if s.probe != nil {
		s.resolve(s.probe, probeSucceeded)
	}
}

// A probe is a retry that an open breaker lets through, for every call
// that waits on it. Its fields are written under the host's mu before done
// is closed, and read after.
type probe struct {
	at      time.Time     // when it is sent
	prevAt  time.Time     // the host's probeAt before it was scheduled
	done    chan struct{} // closed with its outcome
	outcome probeOutcome
}

type probeOutcome uint8

const (
	probePending   probeOutcome = iota
	probeSucceeded              // the host answered: retry at once
	probeFailed                 // the host failed again: one try spent
	probeAbandoned              // never sent (its call left): look again
)

// resolve ends p with outcome o and wakes its waiters. s.mu must be held.
func (s *hostState) resolve(p *probe, o probeOutcome) {
	if p.outcome != probePending {
		return
	}
	p.outcome = o
	if s.probe == p {
		s.probe = nil
	}
	close(p.done)
}

// probeFailedAt ends p, sent and failed at now: its waiters count it as
// one of their tries.
func (s *hostState) probeFailedAt(p *probe, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolve(p, probeFailed)
}

// abandonProbe ends p unsent: its waiters look for another probe, and the
// next one may be sent as early as p could have been.
func (s *hostState) abandonProbe(p *probe) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probe == p {
		s.probeAt = p.prevAt
	}
	s.resolve(p, probeAbandoned)
}

// awaitProbeAt is asked at now by a call whose retry the budget denied.
// own is the call's own backoff before that retry and ceiling its largest
// possible value; deadline, when not zero, is the call's deadline. It
// returns the probe the call waits for, and whether the call sends that
// probe itself (at p.at). It returns nil when the call should stop: the
// next probe is due after now+ceiling or after the deadline, or no probe
// is scheduled and no other call is in flight to share one (a call alone
// does not wait for a probe: it would cost one probe per call). closed
// reports that the breaker closed meanwhile: retry at once.
func (s *hostState) awaitProbeAt(now time.Time, own, ceiling time.Duration, deadline time.Time) (p *probe, sender, closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open() {
		return nil, false, true
	}
	limit := now.Add(max(own, ceiling))
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	if p := s.probe; p != nil {
		if p.at.After(limit) {
			return nil, false, false
		}
		return p, false, false
	}
	if s.calls.Load() < 2 {
		return nil, false, false
	}
	at := later(s.probeAt, now.Add(own))
	if at.After(limit) {
		return nil, false, false
	}
	p = &probe{at: at, prevAt: s.probeAt, done: make(chan struct{})}
	s.probe, s.probeAt = p, at.Add(s.cfg.probeInterval)
	return p, true, false
}

// coolUntil records that host cools down until until, after an answer
// with status cause that asked for a pause of span: nothing is sent to it
// before until, and then the held requests go releaseGap(span) apart. An
// earlier until than the one known changes nothing.
//
// It is the one place where a cooldown becomes known; a fleet-wide
// coordinator would call it for pauses learnt from other processes.
func (s *hostState) coolUntil(until time.Time, span time.Duration, cause Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !until.After(s.until) {
		return
	}
	s.until, s.span, s.cause = until, span, cause
	s.head.nudge() // the first held request looks at its turn again
}

// A holder is a request held by a cooldown, in its host's queue.
type holder struct {
	wake       chan struct{} // a nudge: the queue changed, look again
	prev, next *holder
	queued     bool
}

func (h *holder) nudge() {
	if h == nil {
		return
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// nextRelease is when the first held request may go. s.mu must be held.
func (s *hostState) nextRelease() time.Time {
	return later(s.until, s.lastRelease.Add(releaseGap(s.span)))
}

// holdAt is asked at now by a request about to be sent. When the host is
// not cooling down and no request is held, it returns nil and a turn not
// after now: send at once. Otherwise it estimates the request's turn (the
// next release, plus one gap for each request held before it); when the
// turn comes after deadline (if not zero) it returns nil and that turn,
// and the request must not be sent; else it queues the request and
// returns its holder, for takeTurnAt.
func (s *hostState) holdAt(now, deadline time.Time) (h *holder, turn time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.nextRelease()
	if s.head == nil && !next.After(now) {
		return nil, now
	}
	turn = later(next, now).Add(time.Duration(s.held) * releaseGap(s.span))
	if !deadline.IsZero() && turn.After(deadline) {
		return nil, turn
	}
	h = &holder{wake: make(chan struct{}, 1), prev: s.tail, queued: true}
	if s.tail != nil {
		s.tail.next = h
	} else {
		s.head = h
	}
	s.tail = h
	s.held++
	return h, turn
}

// takeTurnAt is asked at now by the held request h: it reports whether h
// is let go now (h is then out of the queue), and otherwise until when it
// sleeps at most (zero: until nudged). Only the first held request has a
// time; the others wait for a nudge.
//
// It is the one place where a held request takes its release turn; a
// fleet-wide coordinator would pace the turns of its processes here.
func (s *hostState) takeTurnAt(h *holder, now time.Time) (wake time.Time, released bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head != h {
		return time.Time{}, false
	}
	if next := s.nextRelease(); next.After(now) {
		return next, false
	}
	s.unqueue(h)
	s.lastRelease = now
	s.head.nudge()
	return now, true
}

// leave takes h, whose request gave up, out of the queue: the requests
// behind it move up.
func (s *hostState) leave(h *holder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !h.queued {
		return
	}
	first := s.head == h
	s.unqueue(h)
	if first {
		s.head.nudge()
	}
}

// unqueue removes h from the queue. s.mu must be held.
func (s *hostState) unqueue(h *holder) {
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		s.head = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	} else {
		s.tail = h.prev
	}
	h.prev, h.next, h.queued = nil, nil, false
	s.held--
}

// cooldownCause is the status that started the host's cooldown.
func (s *hostState) cooldownCause() Code {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// hostTable holds the states of at most maxHosts hosts in trouble. A host
// with no entry is healthy, and a call to it costs one atomic load when no
// host is in trouble, and a hash and one more atomic load otherwise: the
// lookup takes no lock unless the host may have an entry. Entries are kept
// in recency order (by their last failure); past maxHosts the oldest one
// is dropped, in constant time. A settled entry is dropped when its last
// call ends.
type hostTable struct {
	cfg   hostConfig
	seed  maphash.Seed
	count atomic.Int32
	added atomic.Uint64 // entries ever created: a call that saw no entry for its host looks again only if this moved
	// marks counts the entries whose host hashes to each slot: zero means
	// "certainly no entry", read without a lock.
	marks [markSlots]atomic.Uint32

	mu             sync.RWMutex // guards m and the recency list
	m              map[string]*hostState
	newest, oldest *hostState
}

// markSlots is the size of hostTable.marks: four slots per entry, so a
// healthy host shares a slot with a host in trouble at most one time in
// four when the table is full.
const markSlots = 4 * maxHosts

func newHostTable(cfg hostConfig) *hostTable {
	return &hostTable{cfg: cfg, seed: maphash.MakeSeed(), m: make(map[string]*hostState)}
}

func (h *hostTable) slot(host string) *atomic.Uint32 {
	return &h.marks[maphash.String(h.seed, host)%markSlots]
}

// lookup returns host's state, or nil when it has none.
func (h *hostTable) lookup(host string) *hostState {
	if h.count.Load() == 0 || h.slot(host).Load() == 0 {
		return nil
	}
	h.mu.RLock()
	s := h.m[host]
	h.mu.RUnlock()
	return s
}

// get returns host's state, creating it with a full budget, and makes it
// the newest entry.
func (h *hostTable) get(host string) *hostState {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.m[host]
	if ok {
		h.unlink(s)
	} else {
		if len(h.m) >= maxHosts {
			h.drop(h.oldest)
		}
		s = newHostState(host, &h.cfg)
		h.m[host] = s
		h.slot(host).Add(1)
		h.count.Add(1)
		h.added.Add(1)
	}
	s.older, s.newer = h.newest, nil
	if h.newest != nil {
		h.newest.newer = s
	} else {
		h.oldest = s
	}
	h.newest = s
	return s
}

// forgetAt drops s if it is still its host's entry and is settled at now.
func (h *hostTable) forgetAt(s *hostState, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[s.host] == s && s.settledAt(now) {
		h.drop(s)
	}
}

// len returns the number of entries.
func (h *hostTable) len() int { return int(h.count.Load()) }

// drop removes s. h.mu must be held.
func (h *hostTable) drop(s *hostState) {
	h.unlink(s)
	delete(h.m, s.host)
	h.slot(s.host).Add(^uint32(0))
	h.count.Add(-1)
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
