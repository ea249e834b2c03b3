// This file holds a host's cooldown: the pause a 429 or 503 asked for,
// and the queue of held requests that are let go, in arrival order, once
// it ends.

package neuracraft

import (
	"time"

	"github.com/neuracraft/neuracraft-go/internal/limits"
)

// maxReleaseGap caps releaseGap: 10 ms, shared with redisfleet (see
// limits.MaxReleaseGap for why).
const maxReleaseGap = limits.MaxReleaseGap

// releaseGap is the time between two requests let go after a cooldown of
// length span when the host is not paced (pace.go): a hundredth of it, and
// at most maxReleaseGap, so held requests go at 100 a second or faster, in
// the order they came. It is the gap a Coordinator is told.
func releaseGap(span time.Duration) time.Duration { return min(span/100, maxReleaseGap) }

// coolUntil records that host cools down until until, after an answer
// with status cause that asked for a pause of span: nothing is sent to it
// before until, and then the held requests go the host's gap apart (its
// pace, else releaseGap(span)). An earlier until than the one known
// changes nothing.
//
// It is the one place where the Transport's own cooldown of a host
// becomes known: from its host's answer (call.afterFailure) or quota
// (call.applyQuota). A fleet's cooldown reaches the local queue through
// holdForFleet.
func (s *hostState) coolUntil(until time.Time, span time.Duration, cause Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !until.After(s.until) {
		return
	}
	s.until, s.span, s.cause = until, span, cause
	s.head.nudge() // the first held request looks at its turn again
}

// holdForFleet records that a fleet's cooldown of the host, which its
// Coordinator knew but could not give a turn in (or whose first wave the
// Transport's requests were part of: joinFleetWaveAt), ends at until (a
// pause of span started by cause): the local queue holds requests until
// then too (call.waitFleet). It is not the Transport's own cooldown, which
// bounds the fleet's turns from below (Hold.Floor): the other calls that
// hold a fleet turn do not take it for a longer one of their own, and
// keep their turns.
func (s *hostState) holdForFleet(until time.Time, span time.Duration, cause Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdForFleetLocked(until, span, cause)
}

// holdForFleetLocked is holdForFleet with s.mu held.
func (s *hostState) holdForFleetLocked(until time.Time, span time.Duration, cause Code) {
	if !until.After(s.fleetUntil) {
		return
	}
	s.fleetUntil = until
	if until.After(s.until) {
		s.span, s.cause = span, cause
	}
	s.head.nudge()
}

// joinFleetWaveAt records at now a success of the first wave of a fleet's
// cooldown of the host that ends at until (a pause of span started by
// cause), answered to a request that no pace let go (call.joinFleetWave):
// the local queue holds the fleet's cooldown too (holdForFleet), and the
// host's pace, when not engaged yet, is engaged as by a pushback of its
// own, whose first wave the success then counts (hostState.pacedAnswerAt).
// It returns the host's pace from now on.
func (s *hostState) joinFleetWaveAt(now, until time.Time, span time.Duration, cause Code) paceNews {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdForFleetLocked(until, span, cause)
	if !s.pace.onAt(now) {
		s.pace.pushbackAt(now, ticket{})
		s.pace.quiet = true
	}
	return s.paceNewsAt(now)
}

// pauseEnd is the end of the host's cooldown: its own, or a fleet's
// that the local queue holds (holdForFleet), whichever is later. s.mu
// must be held.
func (s *hostState) pauseEnd() time.Time { return later(s.until, s.fleetUntil) }

// A holder is a request held by a cooldown, in its host's queue.
type holder struct {
	wake       chan struct{} // a nudge: the queue changed, look again
	prev, next *holder
	queued     bool
	ticket     ticket // the pace it was let go at
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

// nextRelease is when the first held request may go, asked at now. s.mu
// must be held.
func (s *hostState) nextRelease(now time.Time) time.Time {
	return later(s.pauseEnd(), s.lastRelease.Add(s.gapAt(now)))
}

// holdAt is asked at now by a request about to be sent. When the host is
// not cooling down, no request is held and its pace allows one now, it
// returns nil and a turn not after now: send at once (with the ticket it
// writes to *t when the host is paced). Otherwise it estimates the
// request's turn (the next release, plus one gap for each request held
// before it: queueSpanAt); when the turn comes after deadline (if not
// zero) it returns nil and that turn, and the request must not be sent;
// else it queues the request and returns its holder, for takeTurnAt,
// which sets the holder's ticket when it lets it go.
func (s *hostState) holdAt(now, deadline time.Time, t *ticket) (h *holder, turn time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.nextRelease(now)
	if s.head == nil && !next.After(now) {
		if s.pace.gapAt(now) > 0 {
			*t = s.letGoAt(now)
		}
		return nil, now
	}
	turn = later(next, now).Add(s.queueSpanAt(now, s.held))
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

// queueSpanAt is how long after the next release the request behind n
// held ones goes, as the host is paced at now: the releases left of a
// burst go at its gap (the release that takes the last of it is followed
// by the pace's gap), the others at the pace, or releaseGap of the
// cooldown while the host is not paced. s.mu must be held.
func (s *hostState) queueSpanAt(now time.Time, n int) time.Duration {
	gap := s.pace.gapOf(now, false)
	if gap == 0 {
		return time.Duration(n) * releaseGap(s.span)
	}
	b := min(n, max(s.pace.burst-1, 0))
	return time.Duration(b)*s.pace.gapOf(now, true) + time.Duration(n-b)*gap
}

// takeTurnAt is asked at now by the held request h: it reports whether h
// is let go now (h is then out of the queue), and otherwise until when it
// sleeps at most (zero: until nudged). Only the first held request has a
// time; the others wait for a nudge.
//
// It is the one place where a request held by the local queue takes its
// turn. While a Coordinator knows the host's cooldown, requests take the
// fleet's turns instead (Coordinator.Reserve, in call.waitFleet).
func (s *hostState) takeTurnAt(h *holder, now time.Time) (wake time.Time, released bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head != h {
		return time.Time{}, false
	}
	if next := s.nextRelease(now); next.After(now) {
		return next, false
	}
	s.unqueue(h)
	h.ticket = s.letGoAt(now)
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
