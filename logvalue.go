// This file holds LogValue, the one way to log any error of this package,
// or of a wrapped http.Client, in its structured and redacted form.

package neuracraft

import (
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// maxLogText is the most characters of an error's line (its Error) and
// of a text that LogValue logs.
const maxLogText = 1024

// LogValue returns the structured, redacted form of err for log/slog:
//
//	logger.Error("get pipeline failed", "err", neuracraft.LogValue(err))
//
// It exists because http.Client returns every error as a *url.Error,
// whose text starts with the request's URL as it was sent (only a password
// is masked, as "***": the query, api_key=... included, is printed), and
// which does not implement slog.LogValuer, so that slog.Any("err", err)
// logs that text and never the fields of the error inside.
//
// When err's chain (through *url.Error, fmt.Errorf's %w, errors.Join)
// holds an [*APIError], [*RequestError], [*CooldownError] or [*RunError],
// LogValue is that error's own LogValue: a group of its fields (status,
// code, reason, message, request ID, attempts, method, URL, ...). When
// something wraps it
// (a message of the caller's, a retry wait cut short by the context), the
// group ends with "text": the whole error's one line. Any other error is
// logged as its text. Every text is redacted: each URL of a *url.Error in
// the chain loses its user information and secret-looking query values,
// control characters and line breaks are removed, and it is cut at 1024
// characters. LogValue(nil) is the zero slog.Value, which logs as <nil>.
func LogValue(err error) slog.Value {
	if err == nil {
		return slog.Value{}
	}
	var own interface {
		error
		slog.LogValuer
	}
	inTree(err, func(e error) bool {
		switch x := e.(type) {
		case *APIError:
			own = x
		case *RequestError:
			own = x
		case *CooldownError:
			own = x
		case *RunError:
			own = x
		default:
			return false
		}
		return true
	})
	if own == nil {
		return slog.StringValue(redactedText(err))
	}
	attrs := own.LogValue().Group()
	inner := err
	if u, ok := err.(*url.Error); ok && u.Err != nil {
		inner = u.Err // our error names the request already
	}
	if inner != error(own) {
		attrs = append(attrs, slog.String("text", redactedText(inner)))
	}
	return slog.GroupValue(attrs...)
}

// textAttr is a string attribute of a LogValue: value cleaned by the one
// rule of redact.go, at most max characters.
func textAttr(key, value string, max int) slog.Attr {
	return slog.String(key, cleanText(value, max))
}

// redactedText is err's text as an error or a log of this package shows
// it: every *url.Error's URL in it redacted as redactURL does, then
// cleaned by the one rule of redact.go, at most maxLogText characters.
func redactedText(err error) string { return cleanText(urlsRedacted(err), maxLogText) }

// urlsRedacted is err's text with every *url.Error's URL in it redacted
// as redactURL does.
func urlsRedacted(err error) string {
	s := err.Error()
	inTree(err, func(e error) bool {
		if u, ok := e.(*url.Error); ok && u.URL != "" {
			if red := redactRaw(u.URL); red != u.URL {
				s = strings.ReplaceAll(s, strconv.Quote(u.URL), strconv.Quote(red))
				s = strings.ReplaceAll(s, u.URL, red)
			}
		}
		return false
	})
	return s
}

// LogValue implements [slog.LogValuer]: the request, its ID, the host
// that is cooling down, the status that started the cooldown and the wait
// until the request's turn.
func (e *CooldownError) LogValue() slog.Value {
	if e == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(
		textAttr("method", e.Method, maxLogText),
		textAttr("url", e.URL, maxLogText),
		textAttr("request_id", e.RequestID, maxHeaderValue),
		textAttr("host", e.Host, maxLogText),
		slog.Int("cause", int(e.Cause)),
		slog.Duration("retry_after", e.RetryAfter))
}
