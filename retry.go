// This file holds RetryPolicy and RetryBudget, the retry rule
// (DefaultShouldRetry), the backoff and the reading of Retry-After.

package neuracraft

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/neuracraft/neuracraft-go/internal/limits"
)

// Defaults of [RetryPolicy] and [RetryBudget], used for zero fields. The
// field docs state them; they are not exported (as net/http states its
// defaults in field docs), since a caller leaves a field zero to get one.
const (
	defaultMaxAttempts   = 5
	defaultBaseDelay     = 500 * time.Millisecond
	defaultMaxDelay      = 30 * time.Second
	defaultMaxRetryAfter = limits.DefaultMaxRetryAfter // 60 s, shared with redisfleet
	defaultBudgetTokens  = 10
	defaultBudgetRefill  = 0.1
)

// RetryPolicy says which failures a [Transport] retries and how long it
// waits. Zero fields mean the defaults given with each field.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included. Zero
	// means 5; 1 turns retries off.
	MaxAttempts int

	// BaseDelay is the backoff before the first retry when the server sent
	// no Retry-After. The n-th retry waits a random time between zero and
	// BaseDelay*2^(n-1), capped at MaxDelay ("full jitter"). Zero means
	// 500 ms.
	BaseDelay time.Duration

	// MaxDelay caps the computed backoff. Zero means 30 s.
	MaxDelay time.Duration

	// MaxRetryAfter is the longest Retry-After the Transport waits for. A
	// longer one ends the call at once with the *APIError, RetryAfter set,
	// so the caller can schedule. Zero means 60 s.
	MaxRetryAfter time.Duration

	// ShouldRetry decides whether a failed attempt is retried; err is an
	// *APIError or a network error. nil means [DefaultShouldRetry]. A
	// custom function may call DefaultShouldRetry for the cases it does
	// not decide itself. Budget, attempt count, body rewinding, deadlines
	// and MaxRetryAfter still apply.
	ShouldRetry func(req *http.Request, err error) bool

	// Budget limits retries per host. Transport.DisableBudget turns it
	// off.
	Budget RetryBudget
}

// RetryBudget limits the retries a [Transport] makes to one host, like
// gRPC's retry throttling, and opens a circuit breaker when they are
// spent. Each host has a bucket of MaxTokens tokens, full at first. A
// retryable failure takes one token; any other answer puts back Refill. A
// retry is made only while the bucket holds more than half of MaxTokens:
// from a full bucket of 10, four failures in a row are retried, the fifth
// is not.
//
// At half or below, the host's breaker is open. At most one retry per
// BaseDelay (500 ms with the defaults) then goes to the host as a probe,
// sent by a call whose retry was denied while other calls to the host are
// in flight, and every denied call waits for that probe when it is due
// within the call's own backoff ceiling (BaseDelay*2^(n-1), capped at
// MaxDelay: 500 ms, 1 s, 2 s, 4 s with the defaults) and before its
// deadline, counting a failed probe as one of its attempts. An answer to
// the probe, or to any call, closes the breaker and fills the bucket at
// once, and the waiting calls retry immediately. A call alone does not
// wait for a probe (with one call at a time, each would cost one): it
// fails with its attempt's own error, whose text ends "not retried: retry
// budget exhausted".
//
// With the defaults, 200 calls at once during a total outage cost about
// 208 attempts (1.04 a call, at most 1.05) instead of 1000, and 50 calls
// in flight when the server recovers all succeed; 200 calls one after
// another cost 204 attempts. A few percent of failures never empty the
// bucket.
//
// A 429 with a Retry-After that the Transport honours takes no token: the
// server is pacing its clients, not failing, and the shared cooldown
// already keeps every request away until the pause ends. It still needs
// the budget above half to be retried.
//
// [Transport.DisableBudget] turns the budget and the breaker off.
type RetryBudget struct {
	// MaxTokens is the bucket's size. Zero means 10.
	MaxTokens float64
	// Refill is what a success puts back while the breaker is closed.
	// Zero means 0.1: the budget stays full while fewer than about 9% of
	// attempts fail.
	Refill float64
}

// DefaultShouldRetry is the retry rule a [Transport] uses when
// RetryPolicy.ShouldRetry is nil. It retries only what [IsRetryable]
// accepts, and of that: 429 and 503 for any method (the server did not act
// on the request); a failure whose body says "retryable": true for any
// method (the server says so); everything else (500, 502, 504, a
// registered retryable plugin code, a network error) only for an
// idempotent request: GET, HEAD, OPTIONS, TRACE, PUT or DELETE, or any
// request with an Idempotency-Key or X-Idempotency-Key header.
func DefaultShouldRetry(req *http.Request, err error) bool {
	if !IsRetryable(err) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if serverPacing(apiErr.StatusCode) || apiErr.Retryable != nil {
			return true
		}
	}
	return isIdempotent(req)
}

// serverPacing reports whether status says the server is pacing its
// clients rather than failing: 429 Too Many Requests or 503 Service
// Unavailable. Such an answer means the request was not acted on, so it
// may be retried whatever its method, and its Retry-After starts a
// cooldown.
func serverPacing(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

func (t *Transport) maxRetryAfter() time.Duration {
	if t.Retry.MaxRetryAfter <= 0 {
		return defaultMaxRetryAfter
	}
	return t.Retry.MaxRetryAfter
}

func (t *Transport) shouldRetry(req *http.Request, err error) bool {
	if t.Retry.ShouldRetry != nil {
		return t.Retry.ShouldRetry(req, err)
	}
	return DefaultShouldRetry(req, err)
}

// retryDelay is the wait before the retry that follows attempt: the
// response's Retry-After when it has one (honoured reports whether it is
// within MaxRetryAfter), else the jittered exponential backoff.
func (t *Transport) retryDelay(apiErr *APIError, attempt int) (delay time.Duration, honoured bool) {
	if apiErr != nil && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter, apiErr.RetryAfter <= t.maxRetryAfter()
	}
	return backoff(t.Retry.BaseDelay, t.Retry.MaxDelay, attempt, t.random()), false
}

// stopReason says why a call that failed is not retried; zero means it
// is.
type stopReason uint8

const (
	retrying       stopReason = iota
	notRetryable              // the failure is not one to retry (IsRetryable is false)
	stopMethod                // retryable, but not for this request's method (DefaultShouldRetry)
	stopPolicy                // retryable, but RetryPolicy.ShouldRetry declined
	stopContext               // the request's context is done
	stopRetryAfter            // the server asked for a wait beyond MaxRetryAfter
	stopAttempts              // MaxAttempts reached
	stopBody                  // the body cannot be sent again (no GetBody)
	stopBudget                // the host's retry budget is spent and no probe can serve the call
	stopDeadline              // the wait would end after the context's deadline
)

// note is how the error of a retryable failure says why it was not
// retried, as a note of its line; "" when there is nothing to say.
func (r stopReason) note() string {
	switch r {
	case stopMethod:
		return "not retried: method not idempotent"
	case stopPolicy:
		return "not retried: ShouldRetry declined"
	case stopContext:
		return "not retried: context done"
	case stopRetryAfter:
		return "not retried: Retry-After beyond MaxRetryAfter"
	case stopAttempts:
		return "not retried: attempts exhausted"
	case stopBody:
		return "not retried: body not replayable"
	case stopBudget:
		return "not retried: retry budget exhausted"
	case stopDeadline:
		return "not retried: deadline too close"
	}
	return ""
}

// withStop records on err, the error of the attempt that ends a call, why
// it was not retried, and returns it.
func withStop(err error, r stopReason) error {
	switch e := err.(type) {
	case *APIError:
		e.stop = r
	case *RequestError:
		e.stop = r
	}
	return err
}

// retryInput is what the retry decision after a failed attempt looks at:
// the failure as the policy and IsRetryable see it, the wait it asks for,
// and the state of the call and of its host's budget.
type retryInput struct {
	now      time.Time
	deadline time.Time // the request context's deadline; zero when it has none
	ctxDone  bool      // the request context is done

	shouldRetry bool // the policy's answer: RetryPolicy.ShouldRetry, or DefaultShouldRetry
	customRule  bool // RetryPolicy.ShouldRetry is set: a no is its own
	retryable   bool // IsRetryable's answer

	delay   time.Duration // the wait before the retry: the server's Retry-After, or the backoff
	tooLong bool          // the server asked for a wait beyond MaxRetryAfter
	cooling bool          // the answer started a cooldown of the host: the retry waits its turn

	tries, maxTries int  // attempts made (failed probes waited for included), and allowed
	rewindable      bool // the request's body can be sent again
	budgetLeft      bool // the host's retry budget allows a retry
}

// retryStep is what a call does after a failed attempt.
type retryStep uint8

const (
	stopCall     retryStep = iota // end with the attempt's error; retryDecision.stop says why
	retryLater                    // retry after retryDecision.delay
	waitForTurn                   // retry in turn with the requests the host's cooldown holds
	waitForProbe                  // the budget is spent: wait for the host's next probe
)

// A retryDecision is the outcome of the retry decision ([decideRetry]) and
// of a denied call's look at its host's breaker
// ([hostState.awaitProbeAt]).
type retryDecision struct {
	step retryStep
	// delay is the wait before the retry (retryLater), the pause the
	// server asked for (waitForTurn: the turn may come a little later), or
	// the call's own backoff (waitForProbe from decideRetry; from
	// awaitProbeAt, the time until the probe is due).
	delay time.Duration
	// probe is the probe that the retry is (retryLater) or that the call
	// waits for (waitForProbe); nil from decideRetry, whose waitForProbe
	// sends the call to awaitProbeAt to find one.
	probe *probe
	stop  stopReason // why the call stops (stopCall)
}

// stopWith is the decision to stop for reason r.
func stopWith(r stopReason) retryDecision { return retryDecision{step: stopCall, stop: r} }

// decideRetry is the retry decision after a failed attempt, a function of
// in alone. The first stop reason that applies, in the order of the
// stopReason constants, is the one reported; but a spent budget sends the
// call to its host's breaker before the deadline is looked at, since the
// probe's time, not the call's backoff, then sets the wait.
func decideRetry(in retryInput) retryDecision {
	switch {
	case !in.shouldRetry && !in.retryable:
		return stopWith(notRetryable)
	case !in.shouldRetry && in.customRule:
		return stopWith(stopPolicy)
	case !in.shouldRetry:
		return stopWith(stopMethod)
	case in.ctxDone:
		return stopWith(stopContext)
	case in.tooLong:
		return stopWith(stopRetryAfter)
	case in.tries >= in.maxTries:
		return stopWith(stopAttempts)
	case !in.rewindable:
		return stopWith(stopBody)
	case !in.budgetLeft:
		return retryDecision{step: waitForProbe, delay: in.delay}
	case !in.deadline.IsZero() && in.now.Add(in.delay).After(in.deadline):
		return stopWith(stopDeadline)
	case in.cooling:
		return retryDecision{step: waitForTurn, delay: in.delay}
	}
	return retryDecision{step: retryLater, delay: in.delay}
}

func (t *Transport) random() float64 {
	if t.rand != nil {
		return t.rand()
	}
	return rand.Float64()
}

// backoffCeiling is the largest backoff before retry number n: the
// backoff with r = 1.
func backoffCeiling(base, maxDelay time.Duration, n int) time.Duration {
	return backoff(base, maxDelay, n, 1)
}

// backoff is the full-jitter exponential backoff before retry number n
// (1 for the first retry): r times min(maxDelay, base*2^(n-1)), where r is
// in [0, 1). Zero base and maxDelay mean the defaults.
func backoff(base, maxDelay time.Duration, n int, r float64) time.Duration {
	if base <= 0 {
		base = defaultBaseDelay
	}
	if maxDelay <= 0 {
		maxDelay = defaultMaxDelay
	}
	d := maxDelay
	if n-1 < 62 && base <= maxDelay>>(n-1) {
		d = base << (n - 1)
	}
	return time.Duration(r * float64(d))
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an
// HTTP-date, as a wait from now. It returns zero when v is empty, invalid,
// negative or a date not after now. A wait too long for a Duration is
// clamped to the longest Duration.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return maxDuration
			}
			return 0
		}
		if secs > uint64(maxDuration/time.Second) {
			return maxDuration
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(t.Sub(now), 0)
}

const maxDuration = time.Duration(1<<63 - 1)
