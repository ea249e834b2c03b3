// This file answers "could trying again help?" for any error: IsRetryable,
// with the rules for answers (APIError.retryable) and for failures that
// got no answer.

package neuracraft

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
)

// retryable applies the retry rules to an answered request; see
// [IsRetryable].
func (e *APIError) retryable() bool {
	if e == nil {
		return false
	}
	if e.Retryable != nil {
		return *e.Retryable
	}
	pacing := serverPacing(e.StatusCode)
	if e.Code.IsPlugin() {
		if p, ok := lookupPluginCode(e.Code); ok {
			return p.Retryable
		}
		return pacing
	}
	switch e.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return pacing
}

// IsRetryable reports whether trying the same request again can help. It
// looks through any wrapping (*url.Error from http.Client, fmt.Errorf with
// %w). For an [*APIError], in order: the body's "retryable" flag wins; then
// a registered plugin code's Retryable; an unregistered plugin code is
// retryable only with status 429 or 503; otherwise 429, 500, 502, 503 and
// 504 are retryable and every other status is not. A request held back by
// a cooldown ([*CooldownError]) is retryable later.
//
// Transient network failures are retryable:
//   - timeouts of one attempt: dial, TLS handshake, response headers
//     (http.Transport.ResponseHeaderTimeout), reads;
//   - a failure to connect: connection refused, network or host
//     unreachable, no local port left (any dial error but a malformed
//     address), and a name lookup that timed out or failed temporarily
//     (a name that does not exist is not retryable);
//   - a connection closed or reset before the response head, wherever it
//     was cut: io.EOF, io.ErrUnexpectedEOF, ECONNRESET, EPIPE, a head that
//     reads as malformed because it stops short, and net.ErrClosed (a
//     connection closed under the request, as aws-sdk-go-v2 also treats
//     it);
//   - HTTP/2: a stream reset (RST_STREAM) with INTERNAL_ERROR,
//     STREAM_CLOSED, REFUSED_STREAM, CANCEL or ENHANCE_YOUR_CALM, a GOAWAY
//     followed by the close of the connection, and a connection that
//     stopped answering pings. Other HTTP/2 error codes (PROTOCOL_ERROR,
//     HTTP_1_1_REQUIRED, ...) are not.
//
// The caller's own deadline or cancellation is never retryable, however it
// is reported: nil, context.Canceled, the context's own
// context.DeadlineExceeded and http.Client.Timeout expiring are not.
//
// A nil *APIError or *CooldownError returned as an error (a typed nil)
// is not retryable.
//
// IsRetryable does not look at the request method; [Transport] also does,
// see [DefaultShouldRetry]: a network failure is retried only for an
// idempotent request, since the server may have acted on it.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || isContextDeadline(err) || callerTimedOut(err) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.retryable()
	}
	var cooldown *CooldownError
	if errors.As(err, &cooldown) {
		return cooldown != nil
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
	return timedOut(err) || errors.Is(err, net.ErrClosed) || dialFailed(err) ||
		cutHead(err) || h2Reset(err) || h2ConnGone(err)
}
