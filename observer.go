// This file holds Observer, the hook through which a Transport tells what
// its resilience engine does (attempts, waits, retry decisions, breakers,
// pace), its Event, and the Transport's side of it.

package neuracraft

import (
	"context"
	"time"
)

// An Observer is told what a [Transport] does with each call: every
// attempt, every wait before one, every retry decision, and the changes of
// its hosts' breakers and release pace. Set it as Transport.Observer; the
// module github.com/neuracraft/neuracraft-go/neuracraftotel provides one
// that records OpenTelemetry metrics and span events.
//
// Observe is called synchronously on the goroutine of the request the
// event belongs to, with that request's context (the very value of
// req.Context()), so it can read the request's span or values. It is
// called by many goroutines at once and must be safe for concurrent use.
// It is never called with a lock of the Transport held, but it delays
// the request: it must not block or do I/O, and it must not call back into
// the Transport. e.Err is an error the caller gets: read it, never modify
// it.
//
// A nil Transport.Observer costs nothing: no event is built.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// An Event is one thing a [Transport] did, for an [Observer]. Kind says
// which; the fields that do not apply to it are zero.
type Event struct {
	Kind EventKind

	// Method and Host name the request: its method, and its URL's host
	// (with the port when the URL has one), the key of the Transport's
	// per-host state. Never the path, query or request ID. An event that
	// reports a host the Transport forgot (see PaceChanged) names that
	// host, which may be another than the request's, and no Method.
	Method, Host string

	// Attempt is the number of an attempt, from 1: the one started or
	// ended, or, for RetryDecided and RetryStopped, the one that failed
	// (so the retry is resend number Attempt).
	Attempt int

	// Status is the HTTP status of the attempt's answer, for AttemptEnded,
	// RetryDecided and RetryStopped; 0 when it got none (a network error).
	Status int

	// Err is the attempt's error, for AttemptEnded (nil for a success),
	// RetryDecided and RetryStopped: an *APIError or a *RequestError. For
	// WaitEnded, it is what cut the wait short, or nil: the context's
	// error, or the [*CooldownError] a call ends with when a fleet's new
	// cooldown moves its turn past its deadline while it waits.
	Err error

	// Wait is the kind of wait, for WaitStarted and WaitEnded.
	Wait WaitKind

	// Stop is why a retryable failure is not retried, for RetryStopped.
	Stop StopReason

	// Duration is, for AttemptEnded, how long the attempt took: until the
	// response's headers of a success, the error body read of a failure,
	// or the network error; for WaitStarted, how long the wait
	// is expected to last (a held request's estimated turn, zero when
	// unknown); for WaitEnded, how long it lasted; for RetryDecided, the
	// delay before the retry, as [RetryEvent.Delay]; for PaceChanged, how
	// long the pace lasts unless another PaceChanged comes first (zero
	// with a Pace of 0; for a fleet's pace, the longest it can last: see
	// PaceChanged).
	Duration time.Duration

	// Pace is, for PaceChanged, the most requests per second that the
	// Transport now lets go to Host: while a [Coordinator] paces Host,
	// the fleet's pace, which its requests go at; 0 means Host is no
	// longer paced.
	Pace float64
}

// An EventKind says what an [Event] reports.
//
// Per call, the events come in this order: AttemptStarted and
// AttemptEnded around every attempt; after a failed attempt, RetryDecided
// or RetryStopped (nothing after a failure that is not retryable; a call
// waiting for its host's probes may decide more than one retry for one
// attempt, as it calls Transport.OnRetry). Before any attempt, the first
// one included, come the call's waits, each a WaitStarted and a WaitEnded
// (a wait that starts always ends, on the same goroutine; a hold in a
// fleet's queue is one wait, however often the call asks for its turn);
// a retry decided is not sent when the call's context ends during the
// wait (WaitEnded has the context's error) or when its turn in a cooldown
// would come after the context's deadline (the call then ends with a
// [*CooldownError], without a wait, or ending the fleet's wait it was in
// with it, and a RetryStopped with Stop "deadline" follows the
// RetryDecided: the retry was decided, and is not made). BreakerOpened,
// BreakerClosed and PaceChanged are reported by the call whose attempt
// caused the change, after its AttemptEnded, and by a call whose first
// failure or end made the Transport forget a host whose breaker was open
// or that was paced (see PaceChanged).
const (
	// AttemptStarted: attempt number Attempt is about to be sent.
	AttemptStarted EventKind = iota + 1
	// AttemptEnded: the attempt got an answer (Status; Err for 400 and
	// above) or failed without one (Err), after Duration.
	AttemptEnded
	// WaitStarted: the call waits, of kind Wait, before its next attempt
	// (or its first, when a cooldown holds it).
	WaitStarted
	// WaitEnded: the wait is over, after Duration; Err is set when it was
	// cut short, and the call then ends.
	WaitEnded
	// RetryDecided: the failed attempt is retried after Duration. It
	// comes before the wait, as Transport.OnRetry is called.
	RetryDecided
	// RetryStopped: the failed attempt was retryable but is not retried,
	// for the reason Stop; the call ends with Err.
	RetryStopped
	// BreakerOpened: Host's retry budget is spent and its circuit breaker
	// opened. For each host, opens and closes alternate in the Transport,
	// but two goroutines may report theirs in either order: count them
	// (+1, -1) rather than keep the last one.
	BreakerOpened
	// BreakerClosed: an answer from Host closed its breaker and refilled
	// its budget, or the Transport forgot Host (its next failure starts
	// with a full budget).
	BreakerClosed
	// PaceChanged: requests to Host now go at most Pace a second, for
	// Duration unless another PaceChanged comes first; then Host is no
	// longer paced. The pace is the slower of the one that a 429 or 503
	// with an honoured Retry-After engages (20 a second once the cooldown
	// ends, then learnt from the answers: see [Transport]) and the one
	// that the quota fields of the answers ask for. Every change of the
	// pace or of its end is reported (each such 429 or 503 puts the end
	// further). A pace that runs out needs no event, as the Transport
	// starts no timer: a pace that Duration has ended is over. Pace 0
	// reports a pace ended otherwise: by the answers (the pace grew past
	// 1000 a second, or the quota is no longer low), or by the Transport
	// forgetting Host (the full host table made room, or a call found
	// the host settled after its pace ran out). Two goroutines may
	// report a host's changes in either order, as for breakers.
	//
	// With a [Coordinator], the fleet's pace wins while it paces Host:
	// a call let go at a fleet turn whose Gap differs from the pace last
	// reported reports Pace 1/Turn.Gap, the pace the requests go at
	// (they take the fleet's turns, not the Transport's queue), and the
	// Transport's own pace, engaged or changed meanwhile, is not
	// reported. As a Turn does not say when the fleet's pace ends,
	// Duration is 30 s, the longest a pace lasts after the last
	// pushback; turns at the same Gap report it again, for 30 s, once
	// half of that is gone. A call that finds the fleet no longer
	// holding Host (Coordinator.Cooldown reports false) reports the
	// Transport's own pace, or 0.
	PaceChanged
)

// EventKind is the kind of an [Event]. Its String is a short stable name,
// such as "attempt.ended".
type EventKind uint8

var eventKindNames = [...]string{"", "attempt.started", "attempt.ended", "wait.started", "wait.ended",
	"retry.decided", "retry.stopped", "breaker.opened", "breaker.closed", "pace.changed"}

// String returns the kind's short stable name, "attempt.started" for
// AttemptStarted and so on, or "" for an unknown kind.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return ""
}

// WaitKind is what a call waits for before its next attempt, in an
// [Event]: "backoff" (its own delay after a failure), "cooldown" (held in
// its host's queue: while the host cools down after a 429 or 503 or a
// quota spent, then until its turn at the host's pace),
// "probe" (its host's breaker is open: the probe it waits for, or sends)
// or "fleet" (its turn in a [Coordinator]'s fleet-wide release queue).
// The requests held by cooldowns right now are the waits of kinds
// "cooldown" and "fleet" started and not yet ended. The values are stable
// and few, fit for a metric attribute.
type WaitKind string

// StopReason is why a retryable failure was not retried, in an [Event]:
// "method" (not idempotent), "policy" (RetryPolicy.ShouldRetry declined),
// "context" (the context was done), "retry_after" (beyond MaxRetryAfter),
// "attempts" (MaxAttempts reached), "body" (no GetBody to send it again),
// "budget" (the host's retry budget is spent) or "deadline" (the wait
// would end after the context's deadline): the notes of the error's line,
// in short. The values are stable and few, fit for a metric attribute.
type StopReason string

// Wait kinds.
const (
	backoffWait  WaitKind = "backoff"
	cooldownWait WaitKind = "cooldown"
	probeWait    WaitKind = "probe"
	fleetWait    WaitKind = "fleet"
)

// name is r as a StopReason; "" for retrying and notRetryable.
func (r stopReason) name() StopReason {
	switch r {
	case stopMethod:
		return "method"
	case stopPolicy:
		return "policy"
	case stopContext:
		return "context"
	case stopRetryAfter:
		return "retry_after"
	case stopAttempts:
		return "attempts"
	case stopBody:
		return "body"
	case stopBudget:
		return "budget"
	case stopDeadline:
		return "deadline"
	}
	return ""
}

// The Transport's side: each hook below is one call at the point where
// the thing happens, and costs one nil check when the Transport has no
// Observer. None is called with a lock held.

// observe tells the Transport's Observer, if any, of e, about c's request.
func (c *call) observe(e Event) {
	if o := c.t.Observer; o != nil {
		e.Method, e.Host = c.req.Method, c.host
		o.Observe(c.ctx, e)
	}
}

// attemptStarted reports that c's attempt is about to be sent, and returns
// the time it starts for attemptEnded (zero without an Observer). It and
// attemptEnded are on the success path: without an Observer they are
// inlined down to their nil check.
func (c *call) attemptStarted() time.Time {
	if c.t.Observer == nil {
		return time.Time{}
	}
	return c.reportAttemptStarted()
}

func (c *call) reportAttemptStarted() time.Time {
	c.observe(Event{Kind: AttemptStarted, Attempt: c.attempt})
	return time.Now()
}

// attemptEnded reports the end of c's attempt started at began: its
// answer's status (0 when none), and its error (nil for a success).
func (c *call) attemptEnded(began time.Time, status int, err error) {
	if c.t.Observer != nil {
		c.reportAttemptEnded(began, status, err)
	}
}

func (c *call) reportAttemptEnded(began time.Time, status int, err error) {
	c.observe(Event{Kind: AttemptEnded, Attempt: c.attempt, Status: status, Err: err, Duration: time.Since(began)})
}

// stop ends the call with err, the error of its last attempt, not retried
// for r: it records r on err, and then reports a retryable failure's
// reason.
func (c *call) stop(err error, r stopReason) error {
	err = withStop(err, r)
	if r != notRetryable && c.t.Observer != nil {
		c.observe(Event{Kind: RetryStopped, Attempt: c.attempt, Status: statusOf(err), Err: err, Stop: r.name()})
	}
	return err
}

// wait is sleep(c.ctx, d), reported as a wait of kind k.
func (c *call) wait(k WaitKind, d time.Duration) error {
	if c.t.Observer == nil {
		return sleep(c.ctx, d)
	}
	began := c.waitStarted(k, d)
	err := sleep(c.ctx, d)
	c.waitEnded(k, began, err)
	return err
}

// waitStarted reports that c starts a wait of kind k, expected to last d,
// and returns the time it starts, for waitEnded (zero without an
// Observer).
func (c *call) waitStarted(k WaitKind, d time.Duration) time.Time {
	if c.t.Observer == nil {
		return time.Time{}
	}
	c.observe(Event{Kind: WaitStarted, Wait: k, Duration: d})
	return time.Now()
}

// waitEnded reports the end of c's wait of kind k started at began; err is
// what cut it short, or nil.
func (c *call) waitEnded(k WaitKind, began time.Time, err error) {
	if c.t.Observer != nil {
		c.observe(Event{Kind: WaitEnded, Wait: k, Duration: time.Since(began), Err: err})
	}
}

// breakerChanged reports that c's attempt opened (open) or closed (!open)
// its host's breaker, when changed is set: what hostState.failed and
// hostState.answered return.
func (c *call) breakerChanged(changed, open bool) {
	if changed && c.t.Observer != nil {
		kind := BreakerClosed
		if open {
			kind = BreakerOpened
		}
		c.observe(Event{Kind: kind})
	}
}

// paceChanged reports n, the pace of c's host that hostState.pushbackAt,
// pacedAnswerAt or quotaAt returned, when it is news.
func (c *call) paceChanged(n paceNews) {
	if n.changed && c.t.Observer != nil {
		c.observe(Event{Kind: PaceChanged, Pace: perSecond(n.gap), Duration: n.lasts})
	}
}

// lost reports the end of what an Observer was told of a host that the
// Transport forgot during c (l, from the host table): its breaker is
// closed and it is no longer paced, since its next failure starts afresh.
// The host may be another than c's.
func (c *call) lost(l lostState) {
	o := c.t.Observer
	if o == nil || !l.open && !l.paced {
		return
	}
	if l.open {
		o.Observe(c.ctx, Event{Kind: BreakerClosed, Host: l.host})
	}
	if l.paced {
		o.Observe(c.ctx, Event{Kind: PaceChanged, Host: l.host})
	}
}

// perSecond is the rate of requests sent gap apart; 0 for no gap.
func perSecond(gap time.Duration) float64 {
	if gap <= 0 {
		return 0
	}
	return float64(time.Second) / float64(gap)
}

// statusOf is the HTTP status of err, an attempt's error; 0 when it got
// no answer.
func statusOf(err error) int {
	if apiErr, ok := err.(*APIError); ok {
		return apiErr.StatusCode
	}
	return 0
}
