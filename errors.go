// This file holds the error types (APIError for an answer, RequestError
// for no answer, CooldownError for a request held back) and the one-line
// format they share (errorLine).

package neuracraft

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// nilText is what the error types' Error methods return for a nil
// pointer: a typed nil returned as an error (fmt.Errorf("%w",
// (*APIError)(nil))) is a caller's mistake, which prints as fmt prints a
// nil, classifies as nothing (no Is matches, IsRetryable is false), logs
// as an empty group, and never panics.
const nilText = "<nil>"

// APIError is a failed NeuraCraft call: the API, or a proxy in front of
// it, answered with an HTTP status of 400 or more. It is the error of
// every call that got an answer (a call that got none fails with a
// [*RequestError], one held back unsent with a [*CooldownError]); test it
// with [errors.Is] against a sentinel ([ErrNotFound], [ErrPlugin], ...) or
// a [Code], and reach its fields with [errors.As].
//
// StatusCode is the HTTP status; Code is the most specific NeuraCraft code,
// which differs from the status only when the body names one (a plugin
// failure sent as HTTP 500 has StatusCode 500 and Code 8102).
//
// An APIError holds no request headers, so neither Error, nor fmt's %v and
// %+v, nor its slog value can print a credential; URL has its user
// information dropped and secret-looking query values redacted.
type APIError struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Code is the body's numeric code (also when sent as a numeric string
	// such as "8102") when it is a failure status (400-599) or a plugin
	// code; otherwise the HTTP status.
	Code Code
	// Reason is the body's string code, such as "insufficient_scope", or
	// the "error" of an OAuth body ({"error": "invalid_client", ...}, RFC
	// 6749) or, failing both, of a Bearer challenge in WWW-Authenticate
	// (RFC 6750); else "". At most 64 characters, on one line.
	Reason string
	// Message is the body's message, or the "error_description" of the
	// OAuth body or Bearer challenge. Without one (an HTML page from a
	// gateway, an empty or broken body) it is a short excerpt of a
	// plain-text body, or the status text. At most 300 characters, on one
	// line.
	Message string
	// Details is the body's "details", of any JSON type (object, array,
	// string, ...), as sent; nil when the body has none or null.
	Details json.RawMessage
	// Retryable is the body's "retryable" flag, which [IsRetryable]
	// puts first; nil when the body has none.
	Retryable *bool
	// RequestID is the response's X-Request-ID header; when the response
	// has none, the X-Request-ID the request was sent with, cleaned like
	// every text of an error: on one line, without control or
	// bidirectional characters, at most 128 characters (a longer value
	// keeps 127 and ends in "…").
	RequestID string
	// RetryAfter is the wait the Retry-After header asks for (delay-seconds
	// or an HTTP-date), zero when the header is absent, invalid or in the
	// past.
	RetryAfter time.Duration
	// Attempts is how many times the request was sent; set by [Transport],
	// zero from [FromResponse] (unless the response came from a Transport
	// with ReturnErrorResponses: FromResponse then returns its *APIError).
	Attempts int
	// Method and URL identify the request, when the response names it.
	// URL carries no user information and its secret-looking query values
	// are replaced by "REDACTED".
	Method string
	URL    string
	// Header is the response's header. When a name or value holds a
	// credential the request carried, Header is a copy with it replaced
	// by "[REDACTED]".
	Header http.Header
	// Body is the raw body as read: at most the configured limit
	// (64 KiB by default), with each credential the request carried
	// replaced by "[REDACTED]"; nil when the body also spells one with
	// JSON escapes.
	Body []byte
	// Truncated reports that the body was longer than the limit and Body
	// holds only its beginning.
	Truncated bool
	// Err is why the body could not be fully read or decoded, or nil.
	// Unwrap returns it.
	Err error

	// stop is why the Transport did not retry a retryable failure.
	stop stopReason
	// readErr is the error that stopped the reading of the body before
	// its end (Err wraps it too), or nil.
	readErr error
	// head is the response the error was decoded from, without its Body
	// and Request, while a Transport with ReturnErrorResponses may still
	// return it (see errresponse.go); nil otherwise.
	head *http.Response
	// raw is the body as read when hiding credentials changed Body (see
	// hide.go) and head is set: the response returned keeps the body as
	// the server sent it, the error does not.
	raw []byte
}

// Error returns one line: the request, the code, the message and the
// notes (the HTTP status when the code differs, the request ID, the
// attempts), each once, as in
//
//	neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: Resource not found (request req_abc123)
func (e *APIError) Error() string {
	if e == nil {
		return nilText
	}
	msg := e.Message
	if msg == e.Code.Name() {
		msg = ""
	}
	var status string
	if e.StatusCode != int(e.Code) {
		status = "HTTP " + strconv.Itoa(e.StatusCode)
	}
	what := e.Code.String()
	if e.Code == 0 {
		what = "error response" // a zero APIError, not one decoded
	}
	return errorLine(e.Method, urlPath(e.URL), what, msg,
		status, requestNote(e.RequestID), countNote(e.Attempts, "attempts"), e.stop.note())
}

// Format prints Error() for every verb (%v, %+v, %s, and %q quoted), so
// that formatting an APIError never dumps its Header or Body.
func (e *APIError) Format(f fmt.State, verb rune) { formatText(f, verb, e.Error()) }

// LogValue implements [slog.LogValuer]: the error as a group of its
// status, code, reason, message, request ID, retry wait, attempts, method
// and redacted URL. Header and Body are left out.
func (e *APIError) LogValue() slog.Value {
	if e == nil {
		return slog.GroupValue()
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.Int("status", e.StatusCode),
		slog.Int("code", int(e.Code)))
	attrs = appendText(attrs, "reason", e.Reason, maxReason)
	attrs = append(attrs, textAttr("message", e.Message, maxMessage))
	attrs = appendText(attrs, "request_id", e.RequestID, maxHeaderValue)
	if e.RetryAfter > 0 {
		attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
	}
	if e.Attempts > 0 {
		attrs = append(attrs, slog.Int("attempts", e.Attempts))
	}
	attrs = appendText(attrs, "method", e.Method, maxLogText)
	attrs = appendText(attrs, "url", e.URL, maxLogText)
	return slog.GroupValue(attrs...)
}

// appendText appends the attribute key=v, cleaned and cut at max
// characters as textAttr does, to attrs, unless v is empty.
func appendText(attrs []slog.Attr, key, v string, max int) []slog.Attr {
	if v == "" {
		return attrs
	}
	return append(attrs, textAttr(key, v, max))
}

// Unwrap returns Err: why the body could not be read or decoded, or nil.
func (e *APIError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is reports whether target is e's body code or HTTP status, or a sentinel
// that classifies either of them (see [Code.Is]).
func (e *APIError) Is(target error) bool {
	if e == nil {
		return false
	}
	if c, ok := target.(Code); ok {
		return c == e.Code || int(c) == e.StatusCode
	}
	return e.Code.Is(target) || Code(e.StatusCode).Is(target)
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

// Error returns one line: the request, that it was held back unsent, the
// host and its cooldown's cause, when the request's turn comes, and the
// request ID, as in
//
//	neuracraft: GET /v1/pipelines: held back locally, not sent: api.neuracraft.com is cooling down after 429 Too Many Requests, turn in 1.2s (request req_1)
func (e *CooldownError) Error() string {
	if e == nil {
		return nilText
	}
	host := e.Host
	if host == "" {
		host = "the host"
	}
	detail := host + " is cooling down"
	if e.Cause != 0 {
		detail += " after " + e.Cause.String()
	}
	if e.RetryAfter > 0 {
		detail += ", turn in " + e.RetryAfter.String()
	}
	return errorLine(e.Method, urlPath(e.URL), "held back locally, not sent", detail, requestNote(e.RequestID))
}

// Is reports whether target is ErrRateLimited.
func (e *CooldownError) Is(target error) bool { return e != nil && target == ErrRateLimited }

// RequestError is a call through a [Transport] that got no answer: the
// connection failed, was cut before the response head, or timed out. It
// names the request so that logs can quote it, and unwraps to the cause
// (a net.Error, io.EOF, a context error, ...). [IsRetryable] says whether
// the cause is transient.
type RequestError struct {
	// Method and URL name the request; URL is redacted like APIError.URL.
	Method string
	URL    string
	// RequestID is the X-Request-ID the request was sent with, or "".
	RequestID string
	// Attempts is how many times the request was sent, this one included.
	Attempts int
	// Err is why the attempt failed.
	Err error

	// stop is why the Transport did not retry it.
	stop stopReason
}

// Error returns one line: the request, the cause, the request ID and the
// attempt, as in
//
//	neuracraft: GET /v1/pipelines: read tcp ...: connection reset by peer (request req_1, attempt 2)
func (e *RequestError) Error() string {
	if e == nil {
		return nilText
	}
	cause := "no answer"
	if e.Err != nil {
		cause = redactedText(e.Err)
	}
	var attempt string
	if e.Attempts > 0 {
		attempt = "attempt " + strconv.Itoa(e.Attempts)
	}
	return errorLine(e.Method, urlPath(e.URL), cause, "", requestNote(e.RequestID), attempt, e.stop.note())
}

// Unwrap returns Err.
func (e *RequestError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// LogValue implements [slog.LogValuer]: the request, its ID, the attempts
// and the cause.
func (e *RequestError) LogValue() slog.Value {
	if e == nil {
		return slog.GroupValue()
	}
	cause := ""
	if e.Err != nil {
		cause = redactedText(e.Err)
	}
	return slog.GroupValue(
		textAttr("method", e.Method, maxLogText),
		textAttr("url", e.URL, maxLogText),
		textAttr("request_id", e.RequestID, maxHeaderValue),
		slog.Int("attempts", e.Attempts),
		slog.String("error", cause))
}

// formatText prints text for every verb of fmt (quoted for %q): the
// Format method of the types whose fields must never be dumped.
func formatText(f fmt.State, verb rune, text string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", text)
		return
	}
	io.WriteString(f, text)
}

// errorLine renders the one line that every error of this package prints,
//
//	neuracraft: METHOD /path: what: detail (note, note)
//
// leaving out empty parts with their separators, so that a zero value
// still reads as a sentence. The line is cleaned as every error text is
// (redact.go): one line, at most 1024 characters.
func errorLine(method, path, what, detail string, notes ...string) string {
	var b strings.Builder
	b.WriteString("neuracraft: ")
	if req := strings.TrimSpace(method + " " + path); req != "" {
		b.WriteString(req)
		b.WriteString(": ")
	}
	b.WriteString(what)
	if detail != "" {
		if what != "" {
			b.WriteString(": ")
		}
		b.WriteString(detail)
	}
	open := false
	for _, n := range notes {
		if n == "" {
			continue
		}
		if open {
			b.WriteString(", ")
		} else {
			b.WriteString(" (")
			open = true
		}
		b.WriteString(n)
	}
	if open {
		b.WriteByte(')')
	}
	return cleanText(b.String(), maxLogText)
}

// requestNote is the note naming a request ID, or "" without one.
func requestNote(id string) string {
	if id == "" {
		return ""
	}
	return "request " + id
}

// countNote is "n what" for n of 2 or more ("3 attempts"), else "".
func countNote(n int, what string) string {
	if n < 2 {
		return ""
	}
	return strconv.Itoa(n) + " " + what
}
