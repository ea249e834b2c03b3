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

	// Budget limits retries per host.
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
type RetryBudget struct {
	// Disabled turns the budget off: every call may use all its attempts.
	Disabled bool
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

// decide is the retry decision after a failed attempt, at now: retrying,
// or why not. retry is the policy's answer (ShouldRetry), retryable
// IsRetryable's, budgetLeft the host budget's, delay the wait before the
// retry and honoured whether a Retry-After is within MaxRetryAfter. The
// first reason that applies, in the order of the stopReason constants, is
// the one reported.
func (c *call) decide(retry, retryable, budgetLeft bool, delay time.Duration, honoured bool, apiErr *APIError, now time.Time) stopReason {
	deadline, hasDeadline := c.ctx.Deadline()
	switch {
	case !retry && !retryable:
		return notRetryable
	case !retry && c.t.Retry.ShouldRetry != nil:
		return stopPolicy
	case !retry:
		return stopMethod
	case c.ctx.Err() != nil:
		return stopContext
	case apiErr != nil && apiErr.RetryAfter > 0 && !honoured:
		return stopRetryAfter
	case c.tries >= c.max:
		return stopAttempts
	case !c.rewindable:
		return stopBody
	case !budgetLeft:
		return stopBudget
	case hasDeadline && now.Add(delay).After(deadline):
		return stopDeadline
	}
	return retrying
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
