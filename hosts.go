// This file holds the per-host state of a Transport: the retry budget and
// the shared cooldown with its release queue.

package neuracraft

import (
	"context"
	"net/http"
	"time"
)

// hostState is the budget and cooldown of one host. A settled host (full
// budget, no cooldown, nobody queued) has no entry.
type hostState struct {
	tokens float64
	until  time.Time     // end of the cooldown
	span   time.Duration // length of the cooldown, which sets releaseGap
	next   time.Time     // the next free release slot after the cooldown
	cause  Code
}

func (s *hostState) settled(now time.Time, maxTokens float64) bool {
	return s.tokens >= maxTokens && !s.until.After(now) && !s.next.After(now)
}

// releaseGap is the time between two requests let go after a cooldown of
// length span: a hundredth of it, and at most maxReleaseGap, so held
// requests go at 100 a second or faster, in the order they came.
func releaseGap(span time.Duration) time.Duration { return min(span/100, maxReleaseGap) }

// maxReleaseGap caps releaseGap: a long pause does not mean the server can
// take less once it is over. 10 ms lets through about one request more
// than the server's limit for each 10 ms of round trip, before the first
// 429 of the next cooldown comes back.
const maxReleaseGap = 10 * time.Millisecond

// maxHosts bounds t.hosts; past it, settled entries are dropped.
const maxHosts = 1024

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

// state returns host's entry, creating it with a full budget. t.mu must be
// held.
func (t *Transport) state(host string) *hostState {
	if s, ok := t.hosts[host]; ok {
		return s
	}
	if t.hosts == nil {
		t.hosts = make(map[string]*hostState)
	}
	maxTokens, _ := t.budget()
	if len(t.hosts) >= maxHosts {
		now := time.Now()
		for h, s := range t.hosts {
			if s.settled(now, maxTokens) {
				delete(t.hosts, h)
			}
		}
	}
	s := &hostState{tokens: maxTokens}
	t.hosts[host] = s
	t.nhosts.Store(int32(len(t.hosts)))
	return s
}

// recordAnswer puts Refill back into host's budget after an answer that
// is not a retryable failure.
func (t *Transport) recordAnswer(host string) {
	if t.nhosts.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.hosts[host]
	if !ok {
		return
	}
	maxTokens, refill := t.budget()
	s.tokens = min(s.tokens+refill, maxTokens)
	if s.settled(time.Now(), maxTokens) {
		delete(t.hosts, host)
		t.nhosts.Store(int32(len(t.hosts)))
	}
}

// recordFailure takes a token from host's budget after a retryable
// failure, unless charge is false, and reports whether a retry is still
// allowed.
func (t *Transport) recordFailure(host string, charge bool) bool {
	if t.Retry.Budget.Disabled {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state(host)
	if charge {
		s.tokens = max(s.tokens-1, 0)
	}
	maxTokens, _ := t.budget()
	return s.tokens > maxTokens/2
}

// startCooldown holds requests to host for d from now (or longer, when a
// cooldown already runs past that).
func (t *Transport) startCooldown(host string, d time.Duration, cause Code) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state(host)
	if until := time.Now().Add(d); until.After(s.until) {
		s.until, s.span, s.cause = until, d, cause
	}
}

// waitCooldown holds a request while host cools down. Held requests are
// let go in the order they came, releaseGap apart, from the end of the
// cooldown: so they neither hit the server in the same instant nor
// overtake each other, and a request that arrives while the queue drains
// joins its end. A request whose context's deadline comes before its turn
// gets a *CooldownError at once, unsent; a cancelled context ends the wait
// with the context's error. A request that a new cooldown catches while it
// waits queues again.
func (t *Transport) waitCooldown(ctx context.Context, req *http.Request, id, host string) error {
	for queued := false; ; queued = true {
		now := time.Now()
		t.mu.Lock()
		s, ok := t.hosts[host]
		if !ok || (!s.until.After(now) && (queued || !s.next.After(now))) {
			t.mu.Unlock()
			return nil
		}
		slot := s.until
		if s.next.After(slot) {
			slot = s.next
		}
		if deadline, ok := ctx.Deadline(); ok && slot.After(deadline) {
			cause := s.cause
			t.mu.Unlock()
			return &CooldownError{Method: req.Method, URL: redactURL(req.URL), RequestID: id,
				Host: host, Cause: cause, RetryAfter: slot.Sub(now)}
		}
		s.next = slot.Add(releaseGap(s.span))
		t.mu.Unlock()
		if err := sleep(ctx, slot.Sub(now)); err != nil {
			return err
		}
	}
}
