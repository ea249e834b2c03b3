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
	"sync"
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

	// rand returns a float in [0, 1) for jitter; nil means math/rand/v2.
	// Tests set it.
	rand func() float64

	mu     sync.Mutex
	hosts  map[string]*hostState // only hosts with a spent budget or a cooldown
	nhosts atomic.Int32          // len(hosts), read without mu on the success path
}

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
		maxAttempts = defaultMaxAttempts
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
			err = &RequestError{Method: req.Method, URL: redactURL(req.URL), RequestID: id, Attempts: attempt, Err: err}
		}
		last = err

		delay, honoured := t.retryDelay(apiErr, attempt)
		cooling := honoured && !t.DisableCooldown && serverPacing(apiErr.StatusCode)
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
		paced := honoured && apiErr.StatusCode == http.StatusTooManyRequests
		budgetLeft := t.recordFailure(host, !paced)
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

// decode turns a failed response into an *APIError that names the request.
func (t *Transport) decode(resp *http.Response, req *http.Request, id string, attempt int) *APIError {
	apiErr := newAPIError(resp, t.MaxErrorBody)
	apiErr.Attempts = attempt
	if apiErr.RequestID == "" {
		apiErr.RequestID = cleanHeaderValue(id)
	}
	if apiErr.Method == "" && apiErr.URL == "" {
		apiErr.Method, apiErr.URL = req.Method, redactURL(req.URL)
	}
	return apiErr
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
