// This file holds Transport, the http.RoundTripper that turns NeuraCraft
// failures into *APIError and retries the transient ones, and WrapClient.

package neuracraft

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"
)

// requestIDHeader is the header that names a request on both sides.
const requestIDHeader = "X-Request-Id" // canonical form of X-Request-ID

// Transport is an [http.RoundTripper] for the NeuraCraft API. Wrap it
// around the transport you already use (or call [WrapClient]):
//
//   - A response with status 400 or more comes back as an [*APIError]
//     returned as the RoundTrip error (http.Client wraps it in a
//     *url.Error; errors.Is and errors.As see through that). Its body is
//     read up to MaxErrorBody and closed. Responses 1xx-3xx pass through
//     untouched: the body of a success is streamed to the caller, never
//     read or buffered, and redirects are left to http.Client.
//   - Transient failures are retried as [RetryPolicy] says: 429 and 503
//     for any method, 500, 502, 504 and network errors only for idempotent
//     requests (see [DefaultShouldRetry]). Retry-After is honoured up to
//     MaxRetryAfter; a longer wait is not slept but returned at once in
//     APIError.RetryAfter. No wait is started that would end after the
//     request context's deadline, and a cancelled context ends a wait at
//     once.
//   - Request bodies are never buffered: a request with a body is retried
//     only when req.GetBody can produce it again (http.NewRequest sets
//     GetBody for bytes, strings and their readers).
//   - Every request carries an X-Request-ID header: the caller's, or a
//     fresh random one, the same on every attempt of one call (unless
//     DisableRequestID is set).
//   - Retries to one host are limited by a retry budget with a circuit
//     breaker (see [RetryBudget]), so that an outage does not multiply
//     the load on the server, and calls in flight when it recovers still
//     succeed. The state of at most 1024 hosts in trouble is kept; past
//     that, the host whose last failure is oldest is forgotten.
//   - After a 429 or 503 with an honoured Retry-After, every request to
//     that host through this Transport waits until the host's cooldown
//     ends, instead of hitting the server again; then the held requests
//     are let go in the order they came, 10 ms apart (a hundredth of the
//     cooldown, when that is shorter). A request whose context cannot wait
//     for its turn fails at once with a [*CooldownError], never sent; one
//     whose context ends while it waits gives its turn up, and the
//     requests behind it move up. With a [Coordinator], the cooldown and
//     the order of release are shared with the other processes of a fleet.
//   - The error of a retryable failure that was not retried says why, as
//     the last note of its line: "not retried: retry budget exhausted",
//     "attempts exhausted", "body not replayable", "deadline too close",
//     "Retry-After beyond MaxRetryAfter" or "context done".
//
// Returning 4xx and 5xx answers as errors is a deliberate difference from
// the bare [http.RoundTripper] contract, which asks for a nil error
// whatever the status: it is what lets errors.Is(err, ErrNotFound) work on
// the error of http.Client.Do. Code that wraps a Transport and expects a
// response for every status (a tracing or metrics transport around it)
// sees an error instead, with the status in the *APIError.
//
// Where other transports go: a tracing transport such as otelhttp's goes
// inside, as Base, to get a span for each attempt (retries visible, each
// with its status), or outside, wrapping the Transport, to get one span per
// call (which then ends with the *APIError as its error). An OAuth 2.0
// transport (golang.org/x/oauth2's, as returned by Config.Client) goes
// inside, as Base, which [WrapClient] does with such a client: each attempt
// then carries a valid token, refreshed if it expired during a retry's
// wait. Note that oauth2's transport adds the token to every request it
// sends, redirects to other hosts included.
//
// Like the RoundTripper contract asks, RoundTrip does not modify the
// request (it sends a shallow copy when it adds a header) and always closes
// the request body. Failed attempts' response bodies are drained (a
// bounded amount) and closed, so connections are reused. RoundTrip starts
// no goroutine.
//
// The zero value is ready to use with the defaults. A Transport is safe for
// concurrent use by multiple goroutines; its budget and cooldown state is
// shared by all of them. Do not change its fields once it is in use.
type Transport struct {
	// Base sends each attempt. nil means http.DefaultTransport.
	Base http.RoundTripper

	// Retry says which failures are retried and how long to wait.
	Retry RetryPolicy

	// MaxErrorBody caps the bytes of an error body kept in APIError.Body.
	// Zero means 64 KiB.
	MaxErrorBody int64

	// DisableCooldown turns the shared per-host cooldown off: requests are
	// then sent regardless of earlier 429 or 503 answers.
	DisableCooldown bool

	// DisableRequestID stops the Transport from adding an X-Request-ID
	// header to requests that have none. Errors then name the request only
	// by the ID of the response, if it has one.
	DisableRequestID bool

	// OnRetry, when set, is called before each wait for a retry, on the
	// goroutine of the request. It must not block for long. [LogRetries]
	// returns one that logs with slog.
	OnRetry func(RetryEvent)

	// Coordinator, when set, shares this Transport's cooldowns with the
	// other processes of a fleet and paces their held requests together
	// (see [Coordinator]; the module
	// github.com/neuracraft/neuracraft-go/redisfleet provides one on
	// Redis). nil means the cooldown is this Transport's alone. Ignored
	// when DisableCooldown is set.
	Coordinator Coordinator

	// rand returns a float in [0, 1) for jitter; nil means math/rand/v2.
	// Tests set it.
	rand func() float64

	// hosts holds the hosts in trouble; nil until the first one.
	hosts atomic.Pointer[hostTable]
}

// WrapClient returns a copy of c whose transport is a [Transport] over c's
// own (http.DefaultTransport when c has none). c itself is not modified;
// its timeout, cookie jar and redirect policy are kept, and the copy's
// redirect policy first drops the X-API-Key and Authorization headers from
// a redirect that leaves the original request's scheme, host and port
// (net/http drops Authorization but would forward X-API-Key to another
// host). A nil c means a new default client. A c that already uses a
// *Transport keeps it.
//
// The copy's errors are *url.Error values, as http.Client's always are,
// and a *url.Error prints the request's URL as it is, query included; log
// them with [LogValue].
func WrapClient(c *http.Client) *http.Client { return wrapClient(c, RetryPolicy{}) }

// wrapClient is WrapClient with the policy of the Transport it adds.
func wrapClient(c *http.Client, p RetryPolicy) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	w := *c
	if _, ok := c.Transport.(*Transport); !ok {
		w.Transport = &Transport{Base: c.Transport, Retry: p}
	}
	w.CheckRedirect = keepCredentialsHome(c.CheckRedirect, nil)
	return &w
}

// RoundTrip sends req, retrying transient failures; see [Transport].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("neuracraft: request has no URL")
	}
	var c call
	c.start(t, req)
	defer c.end()
	for {
		if err := c.waitTurn(); err != nil {
			return nil, err
		}
		if err := c.rewind(); err != nil {
			return nil, err
		}
		resp, err := c.send()
		if err == nil {
			return resp, nil
		}
		if err := c.afterFailure(err); err != nil {
			return nil, err
		}
	}
}

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
		if h := c.t.table(); c.state == nil && h != nil && h.added.Load() != c.added {
			c.hold(h.lookup(c.host)) // the host got an entry during the call
		}
		if c.state != nil {
			c.state.answeredAt(time.Now())
			c.probe = nil
		}
		return resp, nil
	}
	if err == nil {
		return nil, c.t.decode(resp, c.req, c.id, c.attempt)
	}
	return nil, &RequestError{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id, Attempts: c.attempt, Err: err}
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
		c.hostState().coolUntil(now.Add(apiErr.RetryAfter), apiErr.RetryAfter, Code(apiErr.StatusCode))
		c.t.announceCooldown(c.host, apiErr.RetryAfter, Code(apiErr.StatusCode)) // fleet hook (coordinator.go)
	}
	retry := c.t.shouldRetry(c.req, err)
	budgetLeft := true
	switch {
	case !retry && !IsRetryable(err):
		if h := c.t.table(); apiErr != nil && h != nil {
			c.hold(h.lookup(c.host))
			if c.state != nil {
				c.state.answeredAt(now) // an answer: the host is up
			}
		}
	case !c.t.Retry.Budget.Disabled:
		// A 429 with an honoured Retry-After is the server pacing a
		// healthy service, and the cooldown already holds every request
		// to it: it does not spend the budget, which is for failures.
		paced := honoured && apiErr.StatusCode == http.StatusTooManyRequests
		budgetLeft = c.hostState().failedAt(now, !paced)
	}
	if c.probe != nil { // it was a probe, and the host did not answer well
		if c.ctx.Err() != nil {
			c.state.abandonProbe(c.probe)
		} else {
			c.state.probeFailedAt(c.probe, now)
		}
		c.probe = nil
	}

	stop := c.decide(retry, budgetLeft, delay, honoured, apiErr, now)
	if stop == stopBudget {
		return c.awaitProbe(err, delay)
	}
	if stop != retrying {
		return withStop(err, stop)
	}
	if c.t.OnRetry != nil {
		c.t.OnRetry(RetryEvent{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
			Attempt: c.attempt, Delay: delay, Err: err})
	}
	if cooling {
		return nil // waitTurn waits, in turn with the requests the cooldown holds
	}
	if werr := sleep(c.ctx, delay); werr != nil {
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
	var deadline time.Time
	if d, ok := c.ctx.Deadline(); ok {
		deadline = d
	}
	for {
		now := time.Now()
		ceiling := backoffCeiling(c.t.Retry.BaseDelay, c.t.Retry.MaxDelay, c.tries)
		p, sender, closed := s.awaitProbeAt(now, delay, ceiling, deadline)
		switch {
		case closed:
			return nil
		case p == nil:
			return withStop(err, stopBudget)
		case sender:
			c.probe = p
			if c.t.OnRetry != nil {
				c.t.OnRetry(RetryEvent{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
					Attempt: c.attempt, Delay: p.at.Sub(now), Err: err})
			}
			if werr := sleep(c.ctx, p.at.Sub(now)); werr != nil {
				return joinWait(err, werr) // end abandons the probe
			}
			return nil
		}
		if c.t.OnRetry != nil {
			c.t.OnRetry(RetryEvent{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
				Attempt: c.attempt, Delay: max(p.at.Sub(now), 0), Err: err})
		}
		select {
		case <-c.ctx.Done():
			return joinWait(err, c.ctx.Err())
		case <-p.done:
		}
		switch p.outcome {
		case probeSucceeded:
			return nil
		case probeFailed:
			c.tries++
			if c.tries >= c.max {
				return withStop(err, stopBudget)
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
	var deadline time.Time
	if d, ok := c.ctx.Deadline(); ok {
		deadline = d
	}
	now := time.Now()
	h, turn := s.holdAt(now, deadline)
	if h == nil {
		if !turn.After(now) {
			return nil
		}
		return c.abandon(&CooldownError{Method: c.req.Method, URL: redactURL(c.req.URL), RequestID: c.id,
			Host: c.host, Cause: s.cooldownCause(), RetryAfter: turn.Sub(now)})
	}
	for {
		wake, released := s.takeTurnAt(h, time.Now())
		if released {
			return nil
		}
		if err := waitWake(c.ctx, h.wake, wake); err != nil {
			s.leave(h)
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

// CloseIdleConnections closes the idle connections of Base, when Base has
// such a method (http.Transport does). http.Client.CloseIdleConnections
// calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// decode turns a failed response into an *APIError that names the request.
func (t *Transport) decode(resp *http.Response, req *http.Request, id string, attempt int) *APIError {
	apiErr := newAPIError(resp, t.MaxErrorBody)
	apiErr.Attempts = attempt
	if apiErr.RequestID == "" {
		apiErr.RequestID = id
	} else {
		apiErr.RequestID = cleanHeaderValue(apiErr.RequestID) // a custom Base may answer anything
	}
	if apiErr.Method == "" && apiErr.URL == "" {
		apiErr.Method, apiErr.URL = req.Method, redactURL(req.URL)
	}
	return apiErr
}

// errNilResponse is the error of an attempt whose Base returned neither
// a response nor an error, which the RoundTripper contract forbids; it is
// not retried.
var errNilResponse = errors.New("RoundTripper returned a nil *http.Response with a nil error")

// withRequestID returns a shallow copy of req with a fresh X-Request-ID in
// a copy of its header map (the caller's request is never modified), and
// the ID.
func withRequestID(req *http.Request) (*http.Request, string) {
	// One allocation holds the copy of the request and the header value.
	c := &struct {
		req http.Request
		val [1]string
	}{req: *req}
	c.val[0] = newRequestID()
	h := maps.Clone(req.Header)
	if h == nil {
		h = make(http.Header, 1)
	}
	h[requestIDHeader] = c.val[:]
	c.req.Header = h
	return &c.req, c.val[0]
}

// headerValue is h.Get(key) for a key already in canonical form, without
// canonicalizing it again on every request.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// newRequestID returns 32 random hex digits. The IDs are for matching logs,
// not secrets, so math/rand/v2 is enough.
func newRequestID() string {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	var b [32]byte
	hex.Encode(b[:], raw[:])
	return string(b[:])
}

// rewind returns a copy of out with a fresh body from orig.GetBody, for a
// retry. Requests without a body are reused as they are.
func rewind(out, orig *http.Request) (*http.Request, error) {
	if orig.Body == nil || orig.Body == http.NoBody {
		return out, nil
	}
	body, err := orig.GetBody()
	if err != nil {
		return nil, err
	}
	next := *out
	next.Body = body
	return &next, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
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
