// This file holds one call through a Transport: its attempts, the retry
// decision's outcome (waiting for a backoff, a cooldown turn or a probe),
// and the waits themselves.

package neuracraft

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// A call is one RoundTrip: the request, its attempts so far, and the state
// of its host once the host is in trouble.
type call struct {
	t          *Transport
	ctx        context.Context
	req, out   *http.Request // the caller's request, and what is sent
	id, host   string
	rewindable bool
	max        int // tries allowed, the first included

	state   *hostState // nil while the host has no entry
	added   uint64     // the table's count of entries ever created, when the call found none
	attempt int        // attempts sent
	tries   int        // attempts sent, plus failed probes waited for
	last    error      // the last attempt's error
	probe   *probe     // the probe that the next attempt is, or nil
}

// start sets c up for a call of req through t.
func (c *call) start(t *Transport, req *http.Request) {
	*c = call{t: t, ctx: req.Context(), req: req, out: req, host: req.URL.Host,
		id: headerValue(req.Header, requestIDHeader), max: t.Retry.MaxAttempts}
	if c.id == "" && !t.DisableRequestID {
		c.out, c.id = withRequestID(req)
	} else {
		c.id = cleanHeaderValue(c.id) // the caller's header is sent as is, but named cleaned
	}
	c.rewindable = req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if c.max <= 0 {
		c.max = defaultMaxAttempts
	}
	if h := t.table(); h != nil {
		c.added = h.added.Load()
		c.hold(h.lookup(c.host))
	}
}

// hold makes s the call's host state, counting the call in its calls.
func (c *call) hold(s *hostState) {
	if s != nil && c.state == nil {
		c.state = s
		s.calls.Add(1)
	}
}

// hostState returns the call's host state, creating it.
func (c *call) hostState() *hostState {
	if c.state == nil {
		c.hold(c.t.tableForUpdate().get(c.host))
	}
	return c.state
}

// end releases the call's host state, and the probe it was to send.
func (c *call) end() {
	s := c.state
	if s == nil {
		return
	}
	if c.probe != nil {
		s.abandonProbe(c.probe)
	}
	s.calls.Add(-1)
	if now := time.Now(); s.settledAt(now) { // only then lock the table
		c.t.table().forgetAt(s, now)
		c.forgotten(s)
	}
}

// rewind gives a retry a fresh body from GetBody; the error ends the
// call.
func (c *call) rewind() error {
	if c.attempt == 0 {
		return nil
	}
	next, err := rewind(c.out, c.req)
	if err != nil {
		return fmt.Errorf("%w; rewinding the body for a retry: %w", c.last, err)
	}
	c.out = next
	return nil
}

// send makes one attempt. It returns the response of a success (status
// below 400), or the attempt's error: an *APIError or a *RequestError.
func (c *call) send() (*http.Response, error) {
	c.attempt++
	c.tries++
	began := c.attemptStarted()
	resp, err := c.t.base().RoundTrip(c.out)
	switch {
	case err == nil && resp == nil:
		err = fmt.Errorf("the Base, %T: %w", c.t.base(), errNilResponse)
	case err != nil && resp != nil:
		// The RoundTripper contract forbids both; do not leak the body.
		if resp.Body != nil {
			_ = resp.Body.Close()
		}
		resp = nil
	}
	if err == nil && resp.StatusCode < 400 {
		c.attemptEnded(began, resp.StatusCode, nil)
		if h := c.t.table(); c.state == nil && h != nil && h.added.Load() != c.added {
			c.hold(h.lookup(c.host)) // the host got an entry during the call
		}
		if c.state != nil {
			c.breaker(c.state.answeredAt(time.Now()), false)
			c.probe = nil
		}
		return resp, nil
	}
	if err == nil {
		apiErr := c.t.decode(resp, c.req, c.id, c.attempt)
		c.attemptEnded(began, apiErr.StatusCode, apiErr)
		return nil, apiErr
	}
	reqErr := &RequestError{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id, Attempts: c.attempt, Err: err}
	c.attemptEnded(began, 0, reqErr)
	return nil, reqErr
}

// afterFailure records the failed attempt with the host, decides whether
// to retry, and waits for the retry. It returns nil to retry, or the error
// the call ends with.
func (c *call) afterFailure(err error) error {
	c.last = err
	now := time.Now()
	apiErr, _ := err.(*APIError)
	delay, honoured := c.t.retryDelay(apiErr, c.tries)
	cooling := honoured && !c.t.DisableCooldown && serverPacing(apiErr.StatusCode)
	if cooling {
		if c.hostState().coolUntil(now.Add(apiErr.RetryAfter), apiErr.RetryAfter, Code(apiErr.StatusCode)) {
			c.paceChanged(cooldownPace(apiErr.RetryAfter))
		}
		c.t.announceCooldown(c.host, apiErr.RetryAfter, Code(apiErr.StatusCode)) // fleet hook (coordinator.go)
	}
	retry, retryable := c.t.shouldRetry(c.req, err), IsRetryable(err)
	budgetLeft := true
	switch {
	case !retry && !retryable:
		if h := c.t.table(); apiErr != nil && h != nil {
			c.hold(h.lookup(c.host))
			if c.state != nil {
				c.breaker(c.state.answeredAt(now), false) // an answer: the host is up
			}
		}
	case !c.t.Retry.Budget.Disabled:
		// A 429 with an honoured Retry-After is the server pacing a
		// healthy service, and the cooldown already holds every request
		// to it: it does not spend the budget, which is for failures.
		paced := honoured && apiErr.StatusCode == http.StatusTooManyRequests
		var opened bool
		budgetLeft, opened = c.hostState().failedAt(now, !paced)
		c.breaker(opened, true)
	}
	if c.probe != nil { // it was a probe, and the host did not answer well
		if c.ctx.Err() != nil {
			c.state.abandonProbe(c.probe)
		} else {
			c.state.probeFailedAt(c.probe, now)
		}
		c.probe = nil
	}

	stop := c.decide(retry, retryable, budgetLeft, delay, honoured, apiErr, now)
	if stop == stopBudget {
		return c.awaitProbe(err, delay)
	}
	if stop != retrying {
		return c.stop(err, stop)
	}
	c.onRetry(delay, err)
	if cooling {
		return nil // waitTurn waits, in turn with the requests the cooldown holds
	}
	if werr := c.wait(backoffWait, delay); werr != nil {
		return joinWait(err, werr)
	}
	return nil
}

// awaitProbe is the retry of a call whose budget is spent (the host's
// breaker is open): it waits for the host's next probe, or sends it, when
// [hostState.awaitProbeAt] says so, and retries at once when a probe
// succeeds. A failed probe counts as one of the call's tries. It returns
// nil to retry, or the error the call ends with.
func (c *call) awaitProbe(err error, delay time.Duration) error {
	s := c.state
	deadline := c.deadline()
	for {
		now := time.Now()
		ceiling := backoffCeiling(c.t.Retry.BaseDelay, c.t.Retry.MaxDelay, c.tries)
		p, sender, closed := s.awaitProbeAt(now, delay, ceiling, deadline)
		switch {
		case closed:
			return nil
		case p == nil:
			return c.stop(err, stopBudget)
		case sender:
			c.probe = p
			c.onRetry(p.at.Sub(now), err)
			if werr := c.wait(probeWait, p.at.Sub(now)); werr != nil {
				return joinWait(err, werr) // end abandons the probe
			}
			return nil
		}
		c.onRetry(max(p.at.Sub(now), 0), err)
		began := c.waitStarted(probeWait, max(p.at.Sub(now), 0))
		select {
		case <-c.ctx.Done():
			c.waitEnded(probeWait, began, c.ctx.Err())
			return joinWait(err, c.ctx.Err())
		case <-p.done:
			c.waitEnded(probeWait, began, nil)
		}
		switch p.outcome {
		case probeSucceeded:
			return nil
		case probeFailed:
			c.tries++
			if c.tries >= c.max {
				return c.stop(err, stopBudget)
			}
			delay, _ = c.t.retryDelay(nil, c.tries)
		}
	}
}

// waitTurn holds the call while its host cools down: held requests are
// let go in the order they came, releaseGap apart, from the end of the
// cooldown, so they neither hit the server in the same instant nor
// overtake each other, and a request that arrives while the queue drains
// joins its end. A request whose context's deadline comes before its turn
// gets a *CooldownError at once, unsent; one whose context is done, or
// ends while it waits, gives its place up and ends with the context's
// error. A request that a new cooldown catches while it waits waits on.
func (c *call) waitTurn() error {
	if c.t.Coordinator != nil && !c.t.DisableCooldown { // fleet hook (coordinator.go)
		if done, err := c.waitFleet(); done {
			return err
		}
	}
	s := c.state
	if s == nil || c.t.DisableCooldown {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return c.abandon(err)
	}
	deadline := c.deadline()
	now := time.Now()
	h, turn := s.holdAt(now, deadline)
	if h == nil {
		if !turn.After(now) {
			return nil
		}
		return c.abandon(c.cooldownError(s.cooldownCause(), turn.Sub(now)))
	}
	began := c.waitStarted(cooldownWait, turn.Sub(now))
	for {
		wake, released := s.takeTurnAt(h, time.Now())
		if released {
			c.waitEnded(cooldownWait, began, nil)
			return nil
		}
		if err := waitWake(c.ctx, h.wake, wake); err != nil {
			s.leave(h)
			c.waitEnded(cooldownWait, began, err)
			return c.abandon(err)
		}
	}
}

// abandon is the error of a call that ends before its next attempt with
// err: err itself before the first attempt (the caller's body is closed),
// else err joined to the last failure.
func (c *call) abandon(err error) error {
	if c.attempt == 0 {
		closeBody(c.req)
		return err
	}
	return joinWait(c.last, err)
}

// waitWake waits until wake (never, when zero), a nudge, or the end of
// ctx, and then returns ctx's error.
func waitWake(ctx context.Context, nudge <-chan struct{}, wake time.Time) error {
	var timeout <-chan time.Time
	if !wake.IsZero() {
		timer := time.NewTimer(time.Until(wake))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-ctx.Done():
	case <-nudge:
	case <-timeout:
	}
	return ctx.Err()
}

// joinWait is the error of a call whose wait for a retry ended early: it
// matches both the last failure and the wait's own error (the context's,
// or a *CooldownError).
func joinWait(last, waitErr error) error {
	return fmt.Errorf("%w; retry abandoned: %w", last, waitErr)
}

// sleep waits d or until ctx is done, and then returns ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// deadline is the call's deadline, or the zero time when it has none.
func (c *call) deadline() time.Time {
	d, _ := c.ctx.Deadline()
	return d
}

// onRetry tells the Transport's OnRetry hook, if any, that the call waits
// delay before its next attempt because of err.
func (c *call) onRetry(delay time.Duration, err error) {
	if c.t.OnRetry != nil {
		c.t.OnRetry(RetryEvent{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
			Attempt: c.attempt, Delay: delay, Err: err, ctx: c.ctx})
	}
	if c.t.Observer != nil {
		c.observe(Event{Kind: RetryDecided, Attempt: c.attempt, Status: statusOf(err), Err: err, Duration: delay})
	}
}

// cooldownError is the error of the call when it cannot wait its turn,
// wait from now, in its host's cooldown started by cause.
func (c *call) cooldownError(cause Code, wait time.Duration) *CooldownError {
	return &CooldownError{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
		Host: c.host, Cause: cause, RetryAfter: wait}
}
