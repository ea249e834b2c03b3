// This file holds APIError, the decoder that builds it from an HTTP
// response (FromResponse), and the classification helpers IsRetryable and
// IsPlugin.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// DefaultMaxErrorBody is how many bytes of an error response's body
// [FromResponse] and [Transport] keep, by default: 64 KiB.
const DefaultMaxErrorBody = 64 << 10

// maxDrain is how many bytes past the kept part of an error body are read
// and thrown away so that the connection can be reused. A longer body is
// closed unread, which costs the connection but not the time.
const maxDrain = 256 << 10

// maxPrealloc is the most readCapped allocates before it has read
// anything; a longer body grows the buffer as it comes.
const maxPrealloc = 1 << 20

// maxMessage is the longest Message, in runes, taken from a body.
const maxMessage = 300

// APIError is a failed NeuraCraft call: the API, or a proxy in front of
// it, answered with an HTTP status of 400 or more. It is the one error type
// of this package; test it with [errors.Is] against a sentinel
// ([ErrNotFound], [ErrPlugin], ...) or a [Code], and reach its fields with
// [errors.As].
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
	// Reason is the body's string code, such as "insufficient_scope", or "".
	Reason string
	// Message is the body's message. When the body has none (an HTML page
	// from a gateway, an empty or broken body) it is a short, cleaned
	// excerpt of a plain-text body, or the status text.
	Message string
	// Details is the body's "details" object, when it sent one.
	Details json.RawMessage
	// RetryHint is the body's "retryable" flag; nil when the body has none.
	RetryHint *bool
	// RequestID is the response's X-Request-ID header; when the response
	// has none, the X-Request-ID the request was sent with.
	RequestID string
	// RetryAfter is the wait the Retry-After header asks for (delay-seconds
	// or an HTTP-date), zero when the header is absent, invalid or in the
	// past.
	RetryAfter time.Duration
	// Attempts is how many times the request was sent; set by [Transport],
	// zero from [FromResponse].
	Attempts int
	// Method and URL identify the request, when the response names it.
	// URL carries no user information and its secret-looking query values
	// are replaced by "REDACTED".
	Method string
	URL    string
	// Header is the response's header.
	Header http.Header
	// Body is the raw body as read: at most the configured limit
	// (DefaultMaxErrorBody by default).
	Body []byte
	// Truncated reports that the body was longer than the limit and Body
	// holds only its beginning.
	Truncated bool
	// Err is why the body could not be fully read or decoded, or nil.
	// Unwrap returns it.
	Err error
}

// FromResponse returns nil for a response with status 1xx-3xx, leaving its
// body untouched. For 4xx and 5xx it reads at most [DefaultMaxErrorBody]
// bytes of the body, drains a bounded amount more, closes the body, and
// returns an [*APIError]: always that type, whatever the body holds (JSON
// envelope, HTML from a gateway, nothing, a cut-off or invalid document).
func FromResponse(resp *http.Response) error {
	if resp == nil {
		return errors.New("neuracraft: FromResponse: nil response")
	}
	if resp.StatusCode < 400 {
		return nil
	}
	return newAPIError(resp, DefaultMaxErrorBody)
}

// newAPIError decodes an error response, keeping at most limit bytes of its
// body, and closes the body.
func newAPIError(resp *http.Response, limit int64) *APIError {
	if limit <= 0 {
		limit = DefaultMaxErrorBody
	}
	e := &APIError{
		StatusCode: resp.StatusCode,
		Code:       Code(resp.StatusCode),
		Header:     resp.Header,
		RequestID:  resp.Header.Get(requestIDHeader),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if req := resp.Request; req != nil {
		e.Method = req.Method
		e.URL = redactURL(req.URL)
		if e.RequestID == "" {
			e.RequestID = req.Header.Get(requestIDHeader)
		}
	}
	if resp.Body != nil {
		var err error
		e.Body, e.Truncated, err = readCapped(resp.Body, limit, resp.ContentLength)
		if err != nil {
			e.Err = fmt.Errorf("reading error body: %w", err)
		}
		if e.Truncated {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		}
		_ = resp.Body.Close()
	}
	e.decode(resp.Header.Get("Content-Type"))
	return e
}

// readCapped reads at most limit bytes of r and reports whether there was
// more, without ever holding more than limit+1 bytes. A known content
// length sizes the buffer in one allocation. Error and success bodies
// both go through it.
func readCapped(r io.Reader, limit, contentLength int64) (body []byte, truncated bool, err error) {
	limit = min(limit, math.MaxInt64-1) // limit+1 must not overflow
	size := int64(512)
	if contentLength >= 0 {
		// Room to see the end of the body, within the limit; a huge
		// limit and a lying Content-Length must not size it.
		size = min(contentLength, limit, maxPrealloc) + 1
	}
	lr := io.LimitReader(r, limit+1)
	body = make([]byte, 0, size)
	for {
		n, rerr := lr.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
		if int64(len(body)) > limit {
			break
		}
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)] // grow
		}
	}
	if int64(len(body)) > limit {
		return body[:limit:limit], true, nil
	}
	return body, false, err
}

// envelope is NeuraCraft's error body: {"error": {"code": ..., "message": ...}}.
// Every field is raw so that a field of the wrong type spoils only itself.
type envelope struct {
	Error   json.RawMessage `json:"error"`
	Message json.RawMessage `json:"message"`
}

type errorObject struct {
	Code      json.RawMessage `json:"code"`
	Message   json.RawMessage `json:"message"`
	Details   json.RawMessage `json:"details"`
	Retryable json.RawMessage `json:"retryable"`
}

// decode fills Code, Reason, Message, Details and RetryHint from Body. It
// never fails: what cannot be decoded is left out, Message falls back to
// the body's text or the status text, and a JSON syntax error is kept in
// Err.
func (e *APIError) decode(contentType string) {
	body := bytes.TrimSpace(e.Body)
	if len(body) > 0 && (body[0] == '{' || body[0] == '[') {
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil {
			if e.Err == nil && !e.Truncated {
				e.Err = fmt.Errorf("decoding error body: %w", err)
			}
		} else {
			e.decodeEnvelope(env)
		}
	}
	if e.Message == "" {
		e.Message = fallbackMessage(body, contentType, e.StatusCode)
	}
}

func (e *APIError) decodeEnvelope(env envelope) {
	var msg string
	if len(env.Error) > 0 && env.Error[0] == '"' && json.Unmarshal(env.Error, &msg) == nil && msg != "" { // {"error": "text"}
		e.Message = cleanText(msg, maxMessage)
		return
	}
	var obj errorObject
	if len(env.Error) > 0 && env.Error[0] == '{' && json.Unmarshal(env.Error, &obj) == nil {
		e.decodeCode(obj.Code)
		if json.Unmarshal(obj.Message, &msg) == nil {
			e.Message = cleanText(msg, maxMessage)
		}
		if len(obj.Details) > 0 && obj.Details[0] == '{' {
			e.Details = obj.Details
		}
		var hint bool
		if json.Unmarshal(obj.Retryable, &hint) == nil && len(obj.Retryable) > 0 && obj.Retryable[0] != 'n' {
			e.RetryHint = &hint
		}
		return
	}
	if json.Unmarshal(env.Message, &msg) == nil { // {"message": "text"}
		e.Message = cleanText(msg, maxMessage)
	}
}

// decodeCode takes the body's code: a number, or a string that is either
// numeric ("8102") or a reason ("not_found"). Numbers that are neither a
// failure status (400-599) nor a plugin code are ignored; the raw body
// keeps them.
func (e *APIError) decodeCode(raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	text := string(raw)
	if raw[0] == '"' {
		if json.Unmarshal(raw, &text) != nil {
			return
		}
		text = strings.TrimSpace(text)
		if _, err := strconv.Atoi(text); err != nil {
			e.Reason = cleanText(text, 64)
			return
		}
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		return
	}
	if c := Code(n); c.IsPlugin() || (c >= 400 && c <= 599) {
		e.Code = c
	}
}

// fallbackMessage is Message for a body that named none: a short excerpt
// of a plain-text body, else the status text.
func fallbackMessage(body []byte, contentType string, status int) string {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if len(body) > 0 && body[0] != '<' && body[0] != '{' && body[0] != '[' &&
		!strings.Contains(mediaType, "html") && !strings.Contains(mediaType, "json") {
		if msg := cleanText(string(body), 120); msg != "" {
			return msg
		}
	}
	if text := http.StatusText(status); text != "" {
		return text
	}
	return "HTTP status " + strconv.Itoa(status)
}

// cleanText makes s fit for a one-line error message: valid UTF-8, no
// control characters, runs of white space folded, at most max runes (an
// ellipsis marks a cut).
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			n++ // the space written before r
		}
		if n >= max {
			b.WriteString("…")
			return b.String()
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Error returns one line: the request, the code, the message and the
// request ID, each once, as in
//
//	neuracraft: GET /v1/pipelines/pipe_1: 404 Not Found: Resource not found (request req_abc123)
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("neuracraft: ")
	if e.Method != "" || e.URL != "" {
		b.WriteString(e.Method)
		if p := urlPath(e.URL); p != "" {
			if e.Method != "" {
				b.WriteByte(' ')
			}
			b.WriteString(p)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Code.String())
	if e.Message != "" && e.Message != e.Code.Name() {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	var notes []string
	if e.StatusCode != int(e.Code) {
		notes = append(notes, "HTTP "+strconv.Itoa(e.StatusCode))
	}
	if e.RequestID != "" {
		notes = append(notes, "request "+e.RequestID)
	}
	if e.Attempts > 1 {
		notes = append(notes, strconv.Itoa(e.Attempts)+" attempts")
	}
	if len(notes) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(notes, ", "))
		b.WriteByte(')')
	}
	return b.String()
}

// urlPath returns the path of a URL string, or "" when it has none.
func urlPath(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

// Format prints Error() for every verb (%v, %+v, %s, and %q quoted), so
// that formatting an APIError never dumps its Header or Body.
func (e *APIError) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", e.Error())
		return
	}
	io.WriteString(f, e.Error())
}

// LogValue implements [slog.LogValuer]: the error as a group of its
// status, code, reason, message, request ID, retry wait, attempts, method
// and redacted URL. Header and Body are left out.
func (e *APIError) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.Int("status", e.StatusCode),
		slog.Int("code", int(e.Code)))
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	attrs = append(attrs, slog.String("message", e.Message))
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	if e.RetryAfter > 0 {
		attrs = append(attrs, slog.Duration("retry_after", e.RetryAfter))
	}
	if e.Attempts > 0 {
		attrs = append(attrs, slog.Int("attempts", e.Attempts))
	}
	if e.Method != "" {
		attrs = append(attrs, slog.String("method", e.Method))
	}
	if e.URL != "" {
		attrs = append(attrs, slog.String("url", e.URL))
	}
	return slog.GroupValue(attrs...)
}

// Unwrap returns Err: why the body could not be read or decoded, or nil.
func (e *APIError) Unwrap() error { return e.Err }

// Is reports whether target is e's body code or HTTP status, or a sentinel
// that classifies either of them (see [Code.Is]).
func (e *APIError) Is(target error) bool {
	if c, ok := target.(Code); ok {
		return c == e.Code || int(c) == e.StatusCode
	}
	return e.Code.Is(target) || Code(e.StatusCode).Is(target)
}

// retryable applies the retry rules to an answered request; see
// [IsRetryable].
func (e *APIError) retryable() bool {
	if e.RetryHint != nil {
		return *e.RetryHint
	}
	rateLimited := e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
	if e.Code.IsPlugin() {
		if p, ok := LookupPluginCode(e.Code); ok {
			return p.Retryable
		}
		return rateLimited
	}
	switch e.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return rateLimited
}

// IsRetryable reports whether trying the same request again can help. It
// looks through any wrapping (*url.Error from http.Client, fmt.Errorf with
// %w). For an [*APIError], in order: the body's "retryable" flag wins; then
// a registered plugin code's Retryable; an unregistered plugin code is
// retryable only with status 429 or 503; otherwise 429, 500, 502, 503 and
// 504 are retryable and every other status is not. A request held back by
// a cooldown ([*CooldownError]) is retryable later. Transient network
// failures are retryable: timeouts of an attempt (dial, response headers,
// reads), connection refused, and a connection closed or reset before the
// response (io.EOF, io.ErrUnexpectedEOF, ECONNRESET). nil,
// context.Canceled and the context's own context.DeadlineExceeded are not.
//
// IsRetryable does not look at the request method; [Transport] also does,
// see [DefaultShouldRetry].
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || isContextDeadline(err) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.retryable()
	}
	var cooldown *CooldownError
	if errors.As(err, &cooldown) {
		return true
	}
	return isTransientNetError(err)
}

// isContextDeadline reports whether err's tree holds context.DeadlineExceeded
// itself. errors.Is is not used: net/http makes the timeouts of a single
// attempt (dial, response headers) match context.DeadlineExceeded too,
// and those are worth retrying while the caller's deadline is not.
func isContextDeadline(err error) bool {
	return inTree(err, func(e error) bool { return e == context.DeadlineExceeded })
}

// timedOut reports whether any error in err's tree says it timed out.
// errors.As would stop at the first net.Error: a *url.Error around a
// wrapped timeout reports Timeout() false.
func timedOut(err error) bool {
	return inTree(err, func(e error) bool {
		t, ok := e.(interface{ Timeout() bool })
		return ok && t.Timeout()
	})
}

// inTree reports whether match holds for err or any error it wraps, like
// errors.Is with a predicate.
func inTree(err error, match func(error) bool) bool {
	for err != nil {
		if match(err) {
			return true
		}
		switch x := err.(type) {
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if inTree(e, match) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// isTransientNetError reports whether err is a network failure that a new
// attempt may not meet.
func isTransientNetError(err error) bool {
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNRESET,
		syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	return timedOut(err)
}

// IsPlugin reports whether err, through any wrapping, carries a plugin
// code (8000-8999). It is errors.Is(err, ErrPlugin).
func IsPlugin(err error) bool { return errors.Is(err, ErrPlugin) }

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

// secretWords mark query parameters whose values are redacted from URLs.
var secretWords = []string{"key", "token", "secret", "pass", "pwd", "sig", "auth", "credential", "session", "cookie"}

// redactURL renders u without user information or fragment, with the value
// of every query parameter whose name looks secret replaced by "REDACTED".
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "REDACTED"
		} else {
			for name, vals := range q {
				lower := strings.ToLower(name)
				for _, w := range secretWords {
					if strings.Contains(lower, w) {
						for i := range vals {
							vals[i] = "REDACTED"
						}
						break
					}
				}
			}
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}
