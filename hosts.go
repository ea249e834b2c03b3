// This file holds the per-host state of a Transport: hostState, whose
// methods take the time as a parameter, with the retry budget (its
// breaker is in breaker.go, its cooldown in cooldown.go), and hostTable,
// the bounded set of hosts in trouble.

package neuracraft

import (
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
// charge is set, and reports whether the budget still allows a retry,
// and whether this failure opened the breaker.
func (s *hostState) failedAt(now time.Time, charge bool) (retryAllowed, opened bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasOpen := s.open()
	if charge {
		s.tokens = max(s.tokens-1, 0)
	}
	return !s.open(), !wasOpen && s.open()
}

// answeredAt records an answer that is not a retryable failure at now. It
// puts back refill; when the breaker is open it closes it instead, filling
// the budget, and the calls waiting for a probe retry at once. It reports
// whether it closed the breaker.
func (s *hostState) answeredAt(now time.Time) (closed bool) {
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

// hostTable holds the states of at most maxHosts hosts in trouble. A host
// with no entry is healthy, and a call to it costs one atomic load when no
// host is in trouble; a comparison with the names of the hosts in trouble
// while they are at most fewHosts; and a hash and one more atomic load
// past that: the lookup takes no lock unless the host may have an entry. Entries are kept
// in recency order (by their last failure); past maxHosts the oldest one
// is dropped, in constant time. A settled entry is dropped when its last
// call ends.
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

// lookup returns host's state, or nil when it has none.
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
		h.listFew()
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
