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

	state   *hostState // held from start, or from the host's first failure, until end; nil before
	newest  bool       // state was made the table's newest entry by this call (hostStateAt)
	added   uint64     // the table's count of entries ever created, when the call found none
	attempt int        // attempts sent
	tries   int        // attempts sent, plus failed probes waited for
	last    error      // the last attempt's error
	probe   *probe     // the probe that the next attempt is, or nil
	ticket  ticket     // the pace the attempt was let go at (pace.go)

	fleetSpent time.Duration // waited on the Coordinator's methods (coordinator.go)
	fleetTurn  Turn          // the fleet turn the attempt was let go at (coordinator.go)
}

// start sets c up for a call of req through t.
func (c *call) start(t *Transport, req *http.Request) {
	*c = call{t: t, ctx: req.Context(), req: req, out: req, host: req.URL.Host,
		id: headerValue(req.Header, requestIDHeader), max: t.Retry.MaxAttempts}
	if c.id == "" {
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
		if s := h.lookup(c.host); s != nil { // a healthy host's call stops here
			c.state = h.hold(c.host, s)
		}
	}
}

// credentialsSent returns the credentials of the call's request and,
// when the Base answered for another request (resp.Request: an OAuth 2.0
// transport below the Transport adds its token to a copy of the
// request), of that one too.
func (c *call) credentialsSent(resp *http.Response) []string {
	creds := credentialsOf(c.req)
	if sent := resp.Request; sent != nil && sent != c.req && sent != c.out {
		for _, s := range credentialsOf(sent) {
			creds = appendSecret(creds, s)
		}
	}
	return creds
}

// hostStateAt returns the call's host state, holding it first, and
// creating it at now when its host has none. It is asked when the host is
// in trouble (a failure, a cooldown, a quota, a fleet's hold): the first
// time in a call, the state becomes the table's newest entry, so that
// the table forgets first the host whose last trouble is oldest.
func (c *call) hostStateAt(now time.Time) *hostState {
	switch {
	case c.state == nil:
		var lost []lostState
		c.state, lost = c.t.tableForUpdate().holdOrAddAt(c.host, now)
		for _, l := range lost {
			c.lost(l)
		}
	case !c.newest:
		c.t.table().touch(c.state)
	}
	c.newest = true
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
	c.lost(c.t.table().releaseAt(s, time.Now()))
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
	// The error never shows the credentials the request carried
	// (hide.go).
	if err != nil {
		err = hideCredentials(&RequestError{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
			Attempts: c.attempt, Err: err}, credentialsOf(c.req))
		c.attemptEnded(began, 0, err)
		return nil, err
	}
	var failure error
	if resp.StatusCode >= 400 {
		failure = hideCredentials(c.t.decode(resp, c.req, c.id, c.attempt), c.credentialsSent(resp))
	}
	c.attemptEnded(began, resp.StatusCode, failure)
	if quotaStated(resp.Header) {
		c.applyQuota(resp.Header) // ratelimit.go
	}
	if failure != nil {
		return nil, failure
	}
	if h := c.t.table(); c.state == nil && h != nil && h.added.Load() != c.added {
		c.state = h.hold(c.host, h.lookup(c.host)) // the host got an entry during the call
	}
	if c.t.Coordinator != nil && !c.t.DisableCooldown && c.fleetTurn.ID == 0 && c.ticket == (ticket{}) {
		c.joinFleetWave() // coordinator.go
	}
	if c.state != nil {
		c.breakerChanged(c.state.answered(), false)
		c.paceChanged(c.state.pacedAnswerAt(time.Now(), c.ticket))
		c.probe = nil
	}
	return resp, nil
}

// afterFailure records the failed attempt with the host, decides whether
// to retry ([decideRetry]), and waits for the retry. It returns nil to
// retry, or the error the call ends with.
func (c *call) afterFailure(err error) error {
	c.last = err
	now := time.Now()
	apiErr, _ := err.(*APIError)
	delay, honoured := c.t.retryDelay(apiErr, c.tries)
	in := retryInput{now: now, deadline: c.deadline(), delay: delay,
		tooLong: apiErr != nil && apiErr.RetryAfter > 0 && !honoured,
		cooling: honoured && !c.t.DisableCooldown && serverPacing(apiErr.StatusCode),
		tries:   c.tries, maxTries: c.max, rewindable: c.rewindable, budgetLeft: true}
	if in.cooling {
		c.hostStateAt(now).coolUntil(now.Add(apiErr.RetryAfter), apiErr.RetryAfter, Code(apiErr.StatusCode))
		c.paceChanged(c.state.pushbackAt(now, c.ticket, c.t.random()))
		c.announce(apiErr.RetryAfter, Code(apiErr.StatusCode)) // fleet hook (coordinator.go)
	}
	in.shouldRetry, in.customRule, in.retryable = c.t.shouldRetry(c.req, err), c.t.Retry.ShouldRetry != nil, IsRetryable(err)
	switch {
	case !in.shouldRetry && !in.retryable:
		if h := c.t.table(); apiErr != nil && h != nil {
			if c.state == nil {
				c.state = h.hold(c.host, h.lookup(c.host))
			}
			if c.state != nil {
				c.breakerChanged(c.state.answered(), false) // an answer: the host is up
			}
		}
	case !c.t.DisableBudget:
		// A 429 with an honoured Retry-After is the server pacing a
		// healthy service, and the cooldown already holds every request
		// to it: it does not spend the budget, which is for failures.
		paced := honoured && apiErr.StatusCode == http.StatusTooManyRequests
		var opened bool
		in.budgetLeft, opened = c.hostStateAt(now).failed(!paced)
		c.breakerChanged(opened, true)
	}
	if c.probe != nil { // it was a probe, and the host did not answer well
		if c.ctx.Err() != nil {
			c.state.abandonProbe(c.probe)
		} else {
			c.state.probeFailed(c.probe)
		}
		c.probe = nil
	}
	in.ctxDone = c.ctx.Err() != nil
	return c.follow(err, decideRetry(in))
}

// follow carries out d, the decision after the failed attempt err: it
// waits for the retry and returns nil, or returns the error the call ends
// with.
func (c *call) follow(err error, d retryDecision) error {
	switch d.step {
	case stopCall:
		return c.stop(err, d.stop)
	case waitForProbe:
		return c.awaitProbe(err, d.delay)
	}
	c.onRetry(d.delay, err)
	if d.step == waitForTurn {
		return nil // waitTurn waits, in turn with the requests the cooldown holds
	}
	kind := backoffWait
	if d.probe != nil {
		kind = probeWait
	}
	if werr := c.wait(kind, d.delay); werr != nil {
		return joinWait(err, werr) // end abandons the probe, if the retry was one
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
		d := s.awaitProbeAt(now, delay, ceiling, deadline)
		switch {
		case d.step == retryLater && d.probe == nil:
			return nil // the breaker closed meanwhile
		case d.step == retryLater:
			c.probe = d.probe // this call sends the probe
			return c.follow(err, d)
		case d.step != waitForProbe:
			return c.follow(err, d)
		}
		c.onRetry(d.delay, err)
		began := c.waitStarted(probeWait, d.delay)
		select {
		case <-c.ctx.Done():
			c.waitEnded(probeWait, began, c.ctx.Err())
			return joinWait(err, c.ctx.Err())
		case <-d.probe.done:
			c.waitEnded(probeWait, began, nil)
		}
		switch d.probe.outcome {
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
// let go in the order they came, the host's gap apart (its pace, see
// pace.go, else releaseGap), from the end of the cooldown, so they neither
// hit the server in the same instant nor overtake each other, and a
// request that arrives while the queue drains joins its end; while the
// host is paced, a request that finds nobody held waits for its gap too.
// It records in c.ticket the pace the request is let go at. A request
// whose context's deadline comes before its turn gets a *CooldownError at
// once, unsent; one whose context is done, or ends while it waits, gives
// its place up and ends with the context's error. A request that a new
// cooldown catches while it waits waits on.
func (c *call) waitTurn() error {
	c.ticket = ticket{}
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
	h, turn := s.holdAt(now, deadline, &c.ticket)
	if h == nil {
		if !turn.After(now) {
			return nil
		}
		return c.refuse(c.cooldownError(s.cooldownCause(), turn.Sub(now)))
	}
	began := c.waitStarted(cooldownWait, turn.Sub(now))
	for {
		wake, released := s.takeTurnAt(h, time.Now())
		if released {
			c.ticket = h.ticket
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

// refuse ends the call with err, as its turn in a cooldown would come
// after its context's deadline: it is not sent. For a retry already
// decided (the call made an attempt), the retry is stopped after all:
// the last attempt's error records "deadline", an Observer hears
// RetryStopped, and the error the call ends with holds both.
func (c *call) refuse(err *CooldownError) error {
	if c.attempt > 0 {
		c.last = c.stop(c.last, stopDeadline)
	}
	return c.abandon(err)
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
