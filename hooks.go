// This file holds RetryEvent and LogRetries, what a caller sees of each
// retry.

package neuracraft

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

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
	// for its turn. A call whose retry the budget denied and that waits
	// for its host's next probe reports the time until the probe is sent;
	// it retries only if the probe gets an answer.
	Delay time.Duration
	// Err is why the attempt failed: an *APIError or a network error.
	Err error

	ctx context.Context // the request's
}

// Context returns the context of the request that is retried, so that a
// hook can log or trace with it (its span, its values). It is never nil:
// an event built by hand has context.Background().
func (ev RetryEvent) Context() context.Context {
	if ev.ctx == nil {
		return context.Background()
	}
	return ev.ctx
}

// LogRetries returns an OnRetry hook that logs each retry on logger at
// level Warn, with the method, redacted URL, request ID, attempt, delay
// and cause (the code, such as "429 Too Many Requests", or the network
// error), and with the request's context (see [RetryEvent.Context]), so
// that a handler that reads a trace ID from the context finds it. A nil
// logger means slog.Default().
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
		l.LogAttrs(ev.Context(), slog.LevelWarn, "neuracraft: retrying",
			slog.String("method", ev.Method),
			slog.String("url", ev.URL),
			slog.String("request_id", ev.RequestID),
			slog.Int("attempt", ev.Attempt),
			slog.Duration("delay", ev.Delay),
			cause)
	}
}
