// This file holds a host's circuit breaker: the probes an open breaker
// lets through, and the calls that wait for them.

package neuracraft

import "time"

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

// probeFailed ends p, sent and failed: its waiters count it as one of
// their tries.
func (s *hostState) probeFailed(p *probe) {
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
// possible value; deadline, when not zero, is the call's deadline. Its
// decision is one of:
//
//   - retryLater with no probe and no delay: the breaker closed meanwhile,
//     retry at once;
//   - retryLater with a probe: the call sends that probe itself, after
//     delay (at p.at, the call's own backoff or the next free probe time);
//   - waitForProbe with a probe: wait for the probe another call sends,
//     due after delay, and look again at its outcome;
//   - stopCall with stopBudget: the next probe is due after now+ceiling or
//     after the deadline, or no probe is scheduled and no other call is in
//     flight to share one (a call alone does not wait for a probe: it
//     would cost one probe per call).
func (s *hostState) awaitProbeAt(now time.Time, own, ceiling time.Duration, deadline time.Time) retryDecision {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.open() {
		return retryDecision{step: retryLater}
	}
	limit := now.Add(max(own, ceiling))
	if !deadline.IsZero() && deadline.Before(limit) {
		limit = deadline
	}
	if p := s.probe; p != nil {
		if p.at.After(limit) {
			return stopWith(stopBudget)
		}
		return retryDecision{step: waitForProbe, delay: max(p.at.Sub(now), 0), probe: p}
	}
	if s.calls.Load() < 2 {
		return stopWith(stopBudget)
	}
	at := later(s.probeAt, now.Add(own))
	if at.After(limit) {
		return stopWith(stopBudget)
	}
	p := &probe{at: at, prevAt: s.probeAt, done: make(chan struct{})}
	s.probe, s.probeAt = p, at.Add(s.cfg.probeInterval)
	return retryDecision{step: retryLater, delay: at.Sub(now), probe: p}
}
