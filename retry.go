// This file holds Transport, the http.RoundTripper that turns NeuraCraft
// failures into *APIError and retries the transient ones, with its policy,
// per-host retry budget and shared cooldown.

package neuracraft

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [RetryPolicy] and [RetryBudget], used for zero fields.
const (
	DefaultMaxAttempts   = 5
	DefaultBaseDelay     = 500 * time.Millisecond
	DefaultMaxDelay      = 30 * time.Second
	DefaultMaxRetryAfter = 60 * time.Second
	DefaultBudgetTokens  = 10
	DefaultBudgetRefill  = 0.1
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
//   - Retries to one host are limited by a retry budget (see
//     [RetryBudget]), so that an outage does not multiply the load on the
//     server.
//   - After a 429 or 503 with an honoured Retry-After, every request to
//     that host through this Transport waits until the host's cooldown
//     ends, instead of hitting the server again; then the held requests
//     are let go in the order they came, 10 ms apart (a hundredth of the
//     cooldown, when that is shorter). A request whose context cannot wait
//     for its turn fails at once with a [*CooldownError], never sent.
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
	// Zero means DefaultMaxErrorBody (64 KiB).
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

	// rand returns a float in [0, 1) for jitter; nil means math/rand/v2.
	// Tests set it.
	rand func() float64

	mu     sync.Mutex
	hosts  map[string]*hostState // only hosts with a spent budget or a cooldown
	nhosts atomic.Int32          // len(hosts), read without mu on the success path
}

// RetryPolicy says which failures a [Transport] retries and how long it
// waits. Zero fields mean the defaults given with each field.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included. Zero
	// means DefaultMaxAttempts (5); 1 turns retries off.
	MaxAttempts int

	// BaseDelay is the backoff before the first retry when the server sent
	// no Retry-After. The n-th retry waits a random time between zero and
	// BaseDelay*2^(n-1), capped at MaxDelay ("full jitter"). Zero means
	// DefaultBaseDelay (500 ms).
	BaseDelay time.Duration

	// MaxDelay caps the computed backoff. Zero means DefaultMaxDelay (30 s).
	MaxDelay time.Duration

	// MaxRetryAfter is the longest Retry-After the Transport waits for. A
	// longer one ends the call at once with the *APIError, RetryAfter set,
	// so the caller can schedule. Zero means DefaultMaxRetryAfter (60 s).
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
// gRPC's retry throttling: each host has a bucket of MaxTokens tokens,
// full at first. A retryable failure takes one token; any other answer
// puts back Refill. A retry is made only while the bucket holds more than
// half of MaxTokens. With the defaults, a total outage costs about 1.02
// attempts per call (200 calls, 204 attempts) instead of 5, while a few
// percent of failures never empty the bucket. When the budget denies a
// retry, the caller gets the attempt's own error.
//
// A 429 with a Retry-After that the Transport honours takes no token: the
// server is pacing its clients, not failing, and the shared cooldown
// already keeps every request away until the pause ends. It still needs
// the budget above half to be retried.
//
// After an outage the bucket refills by Refill per success: with the
// defaults, about 50 successes before retries resume. Calls in that
// window fail with their first error.
type RetryBudget struct {
	// Disabled turns the budget off: every call may use all its attempts.
	Disabled bool
	// MaxTokens is the bucket's size. Zero means DefaultBudgetTokens (10).
	MaxTokens float64
	// Refill is what a success puts back. Zero means DefaultBudgetRefill
	// (0.1): the budget stays full while fewer than about 9% of attempts
	// fail.
	Refill float64
}

// RetryEvent describes one retry, for [Transport.OnRetry].
type RetryEvent struct {
	// Method and URL name the request; URL is redacted like APIError.URL.
	Method string
	URL    string
	// RequestID is the X-Request-ID sent on every attempt.
	RequestID string
	// Attempt is the number of the attempt that failed, from 1.
	Attempt int
	// Delay is the wait before the next attempt: the backoff, or the
	// Retry-After. A request held by a cooldown may wait a little longer
	// for its turn.
	Delay time.Duration
	// Err is why the attempt failed: an *APIError or a network error.
	Err error
}

// LogRetries returns an OnRetry hook that logs each retry on logger at
// level Warn, with the method, redacted URL, request ID, attempt, delay
// and cause (the code, such as "429 Too Many Requests", or the network
// error). A nil logger means slog.Default().
//
//	t := &neuracraft.Transport{OnRetry: neuracraft.LogRetries(slog.Default())}
func LogRetries(logger *slog.Logger) func(RetryEvent) {
	return func(ev RetryEvent) {
		l := logger
		if l == nil {
			l = slog.Default()
		}
		cause := slog.String("cause", "")
		var apiErr *APIError
		if errors.As(ev.Err, &apiErr) {
			cause.Value = slog.StringValue(apiErr.Code.String())
		} else if ev.Err != nil {
			cause.Value = slog.StringValue(ev.Err.Error())
		}
		l.LogAttrs(context.Background(), slog.LevelWarn, "neuracraft: retrying",
			slog.String("method", ev.Method),
			slog.String("url", ev.URL),
			slog.String("request_id", ev.RequestID),
			slog.Int("attempt", ev.Attempt),
			slog.Duration("delay", ev.Delay),
			cause)
	}
}

// CooldownError reports a request that a [Transport] held back locally and
// never sent, because its host is cooling down after a 429 or 503 and the
// request's context could not wait until the cooldown ends. It matches
// [ErrRateLimited] with errors.Is, and [IsRetryable] reports true.
type CooldownError struct {
	// Method and URL name the request; URL is redacted like APIError.URL.
	Method string
	URL    string
	// RequestID is the X-Request-ID the request would have carried.
	RequestID string
	// Host is the host that is cooling down.
	Host string
	// Cause is the status that started the cooldown: 429 or 503.
	Cause Code
	// RetryAfter is how long until the request's turn: the rest of the
	// cooldown, plus 10 ms (or a hundredth of the cooldown, when shorter)
	// for each request held before it.
	RetryAfter time.Duration
}

// Error says that the request was held back, for how long, and why.
func (e *CooldownError) Error() string {
	msg := "neuracraft: " + e.Method + " " + urlPath(e.URL) +
		": held back locally, not sent: " + e.Host + " is cooling down after " +
		e.Cause.String() + ", and the request's turn comes in " + e.RetryAfter.String()
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

// Is reports whether target is ErrRateLimited.
func (e *CooldownError) Is(target error) bool { return target == ErrRateLimited }

// WrapClient returns a copy of c whose transport is a [Transport] over c's
// own (http.DefaultTransport when c has none). c itself is not modified;
// its timeout, cookie jar and redirect policy are kept. A nil c means a
// new default client. A c that already uses a *Transport is copied as is.
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
	return &w
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
		if apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable ||
			apiErr.RetryHint != nil {
			return true
		}
	}
	return isIdempotent(req)
}

func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// RoundTrip sends req, retrying transient failures; see [Transport].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("neuracraft: request has no URL")
	}
	ctx := req.Context()
	host := req.URL.Host
	out, id := req, headerValue(req.Header, requestIDHeader)
	if id == "" && !t.DisableRequestID {
		out, id = withRequestID(req)
	}
	rewindable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	maxAttempts := t.Retry.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	var last error
	for attempt := 1; ; attempt++ {
		if !t.DisableCooldown && t.nhosts.Load() > 0 {
			if err := t.waitCooldown(ctx, req, id, host); err != nil {
				if attempt == 1 {
					closeBody(req)
					return nil, err
				}
				return nil, joinWait(last, err)
			}
		}
		if attempt > 1 {
			next, err := rewind(out, req)
			if err != nil {
				return nil, fmt.Errorf("%w; rewinding the body for a retry: %w", last, err)
			}
			out = next
		}
		resp, err := t.base().RoundTrip(out)
		if err == nil && resp.StatusCode < 400 {
			t.recordAnswer(host)
			return resp, nil
		}
		var apiErr *APIError
		if err == nil {
			apiErr = t.decode(resp, req, id, attempt)
			err = apiErr
		} else {
			err = &requestError{method: req.Method, path: req.URL.EscapedPath(), id: id, attempt: attempt, err: err}
		}
		last = err

		delay, honoured := t.retryDelay(apiErr, attempt)
		cooling := honoured && !t.DisableCooldown &&
			(apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable)
		if cooling {
			t.startCooldown(host, apiErr.RetryAfter, Code(apiErr.StatusCode))
		}
		retry := t.shouldRetry(req, err)
		if !retry && !IsRetryable(err) {
			t.recordAnswer(host)
			return nil, err
		}
		// A 429 with an honoured Retry-After is the server pacing a healthy
		// service, and the cooldown already holds every request to it: it
		// does not spend the budget, which is for failures.
		rateLimited := honoured && apiErr.StatusCode == http.StatusTooManyRequests
		budgetLeft := t.recordFailure(host, !rateLimited)
		if !retry || !budgetLeft || attempt >= maxAttempts || !rewindable || ctx.Err() != nil ||
			(apiErr != nil && apiErr.RetryAfter > 0 && !honoured) {
			return nil, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(delay).After(deadline) {
			return nil, err
		}
		if t.OnRetry != nil {
			t.OnRetry(RetryEvent{Method: req.Method, URL: redactURL(req.URL), RequestID: id,
				Attempt: attempt, Delay: delay, Err: err})
		}
		if cooling {
			continue // the cooldown wait above waits, in turn with the requests it holds
		}
		if werr := sleep(ctx, delay); werr != nil {
			return nil, joinWait(last, werr)
		}
	}
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

func (t *Transport) maxRetryAfter() time.Duration {
	if t.Retry.MaxRetryAfter <= 0 {
		return DefaultMaxRetryAfter
	}
	return t.Retry.MaxRetryAfter
}

func (t *Transport) shouldRetry(req *http.Request, err error) bool {
	if t.Retry.ShouldRetry != nil {
		return t.Retry.ShouldRetry(req, err)
	}
	return DefaultShouldRetry(req, err)
}

// decode turns a failed response into an *APIError that names the request.
func (t *Transport) decode(resp *http.Response, req *http.Request, id string, attempt int) *APIError {
	apiErr := newAPIError(resp, t.MaxErrorBody)
	apiErr.Attempts = attempt
	if apiErr.RequestID == "" {
		apiErr.RequestID = id
	}
	if apiErr.Method == "" && apiErr.URL == "" {
		apiErr.Method, apiErr.URL = req.Method, redactURL(req.URL)
	}
	return apiErr
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

func (t *Transport) random() float64 {
	if t.rand != nil {
		return t.rand()
	}
	return rand.Float64()
}

// backoff is the full-jitter exponential backoff before retry number n
// (1 for the first retry): r times min(maxDelay, base*2^(n-1)), where r is
// in [0, 1). Zero base and maxDelay mean the defaults.
func backoff(base, maxDelay time.Duration, n int, r float64) time.Duration {
	if base <= 0 {
		base = DefaultBaseDelay
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	d := maxDelay
	if n-1 < 62 && base <= maxDelay>>(n-1) {
		d = base << (n - 1)
	}
	return time.Duration(r * float64(d))
}

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

// requestError is a failed attempt that got no response: it names the
// request, its ID and the attempt, and unwraps to the network error.
type requestError struct {
	method, path, id string
	attempt          int
	err              error
}

func (e *requestError) Error() string {
	note := "attempt " + strconv.Itoa(e.attempt)
	if e.id != "" {
		note = "request " + e.id + ", " + note
	}
	return "neuracraft: " + e.method + " " + e.path + " (" + note + "): " + e.err.Error()
}

func (e *requestError) Unwrap() error { return e.err }

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
		maxTokens = DefaultBudgetTokens
	}
	if refill <= 0 {
		refill = DefaultBudgetRefill
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
