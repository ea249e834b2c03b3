// This file holds Transport, the http.RoundTripper that turns NeuraCraft
// failures into *APIError and retries the transient ones, and WrapClient.

package neuracraft

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
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
//     request context's deadline, and a canceled context ends a wait at
//     once.
//   - Request bodies are never buffered: a request with a body is retried
//     only when req.GetBody can produce it again (http.NewRequest sets
//     GetBody for bytes, strings and their readers).
//   - Every request carries an X-Request-ID header: the caller's, or a
//     fresh random one, the same on every attempt of one call. To choose
//     the ID, set the header on the request (a caller's ID costs no
//     allocation).
//   - A redirect that http.Client follows to another origin (scheme,
//     host or port) than the first request of the call is sent without
//     its X-API-Key and Authorization headers, whatever the client's
//     CheckRedirect; one within the origin keeps them. The credentials a
//     request carried never appear in its error: where the server echoes
//     them, they read "[REDACTED]" (see [APIError.Body]).
//   - Retries to one host are limited by a retry budget with a circuit
//     breaker (see [RetryBudget]), so that an outage does not multiply
//     the load on the server, and calls in flight when it recovers still
//     succeed. The state of at most 1024 hosts in trouble is kept, plus
//     those with a cooldown pending or a call in flight; past that, the
//     host whose last failure is oldest is forgotten.
//   - After a 429 or 503 with an honoured Retry-After, every request to
//     that host through this Transport waits until the host's cooldown
//     ends, instead of hitting the server again; then the held requests
//     are let go in the order they came, at the host's pace. A request
//     whose context cannot wait for its turn fails at once with a
//     [*CooldownError], never sent; one whose context ends while it waits
//     gives its turn up, and the requests behind it move up. With a
//     [Coordinator], the cooldown and the order of release are shared with
//     the other processes of a fleet.
//   - The first such answer also paces the host: from then on, requests to
//     it (held or not) go no closer together than the pace, which starts
//     at 20 a second once the cooldown ends, speeds up while the requests
//     sent at it succeed, and slows down when one of them draws a 429 or
//     503 (which pauses every request again for its Retry-After). The pace
//     holds for 10 s after such an answer before it speeds up again, and
//     ends 30 s after the last one. When answers state the quota left
//     (RateLimit, RateLimit-Remaining or X-RateLimit-Remaining, with the
//     time to its reset), requests wait for the reset when none is left,
//     and go no faster than what is left spread over that time when little
//     is, never for longer than MaxRetryAfter. A host that never met any
//     of these is not paced: its requests cost what they did, plus a look
//     for those fields in each answer.
//   - The error of a retryable failure that was not retried says why, as
//     the last note of its line: "not retried: retry budget exhausted",
//     "method not idempotent", "ShouldRetry declined", "attempts
//     exhausted", "body not replayable", "deadline too close",
//     "Retry-After beyond MaxRetryAfter" or "context done".
//
// Returning 4xx and 5xx answers as errors is a deliberate difference from
// the bare [http.RoundTripper] contract, which asks for a nil error
// whatever the status: it is what lets errors.Is(err, ErrNotFound) work on
// the error of http.Client.Do. Code that wraps a Transport and expects a
// response for every status (a tracing or metrics transport around it)
// sees an error instead, with the status in the *APIError: set
// ReturnErrorResponses for such code, and for generated API clients, to
// get every answer as a response.
//
// Where other transports go: a tracing transport such as otelhttp's goes
// inside, as Base, to get a span for each attempt (retries visible, each
// with its status), or outside, wrapping the Transport, to get one span per
// call (which then ends with the *APIError as its error, or, with
// ReturnErrorResponses, with the final status). Either way, the module
// neuracraftotel's [Observer] adds the retries and cooldown holds as
// events to the span in the request's context, and each wait as a span
// under it: the outer transport's span, or the caller's around the
// attempts'. An OAuth 2.0
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

	// ReturnErrorResponses makes the final answer of 400 or more come back
	// as an *http.Response with a nil error, as the RoundTripper contract
	// asks, for generated API clients and middleware that reads status
	// codes. The default, false, returns it as an *APIError. Retries happen
	// exactly as without it.
	//
	// The response has the status and header the server sent, and the body
	// the Transport read, in memory: at most MaxErrorBody bytes, readable
	// again (Seek to the start, or read after Close). ContentLength is the
	// body's length; the Content-Length header stays as sent. A longer body
	// is cut at MaxErrorBody, never silently: after its first MaxErrorBody
	// bytes Read returns an error that says so and wraps the *APIError,
	// instead of io.EOF, and ContentLength is -1 (a body the network cut
	// ends the same way, with the network's error). [FromResponse] returns
	// the *APIError of such a response without reading the body again, and
	// [WithLastError] reaches it for clients that never return the response.
	//
	// What is not an answer stays an error: a network failure, a request
	// held back by a cooldown, and a call ended after an answer by
	// something else (its context, during the wait for a retry, or a body
	// that GetBody could not give again), whose error wraps the answer's
	// *APIError. So does a Retry-After beyond MaxRetryAfter: the *APIError
	// carries the wait, for the caller to schedule.
	ReturnErrorResponses bool

	// DisableCooldown turns the shared per-host cooldown and the pace off:
	// requests are then sent regardless of earlier 429 or 503 answers and
	// of the quota that answers state.
	DisableCooldown bool

	// DisableBudget turns the per-host retry budget and its circuit
	// breaker off (see [RetryBudget]): every call may then make all its
	// MaxAttempts, however many other calls to its host fail. To retry
	// less during an outage instead, keep the budget and lower
	// RetryBudget.MaxTokens or RetryPolicy.MaxAttempts.
	DisableBudget bool

	// OnRetry, when set, is called before each wait for a retry, on the
	// goroutine of the request. It must not block for long. [LogRetries]
	// returns one that logs with slog.
	OnRetry func(RetryEvent)

	// Observer, when set, is told of every attempt, wait, retry decision,
	// and change of a host's breaker or pace (see [Observer]; the module
	// github.com/neuracraft/neuracraft-go/neuracraftotel records them as
	// OpenTelemetry metrics and span events). nil costs nothing.
	Observer Observer

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
func WrapClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	w := *c
	if _, ok := c.Transport.(*Transport); !ok {
		w.Transport = &Transport{Base: c.Transport}
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
	req = keepCredentialsAtOrigin(req) // a redirect elsewhere goes without them (credentials.go)
	var c call
	c.start(t, req)
	defer c.end()
	for {
		if err := c.waitTurn(); err != nil {
			return c.finish(err)
		}
		if err := c.rewind(); err != nil {
			return c.finish(err)
		}
		resp, err := c.send()
		if err == nil {
			return resp, nil
		}
		if err := c.afterFailure(err); err != nil {
			return c.finish(err) // errresponse.go
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
		apiErr.RequestID = id
	} else {
		apiErr.RequestID = cleanHeaderValue(apiErr.RequestID) // a custom Base may answer anything
	}
	if apiErr.Method == "" && apiErr.URL == "" {
		apiErr.Method, apiErr.URL = req.Method, redactURL(req.URL)
	}
	if t.ReturnErrorResponses {
		apiErr.head = responseHead(resp) // for call.finish
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
