// This file holds Fault, its constructors, and how the server answers one.

package neuracrafttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Kinds of fault, as reported by [Fault.Kind] and [Request.Fault].
const (
	kindRateLimit = "rate_limit"
	kindError     = "error"
	kindPlugin    = "plugin"
	kindProxyHTML = "proxy_html"
	kindTruncated = "truncated"
	kindReset     = "reset_connection"
	kindSlowBody  = "slow_body"
	kindStall     = "stall"
)

// A Fault is a failure that [Server.Fail] makes the server answer with
// instead of serving a request. Build one with [RateLimit], [Error],
// [Plugin], [ProxyHTML], [Truncated], [ResetConnection], [SlowBody] or
// [Stall], and add response headers with [Fault.WithHeader]. The zero Fault
// is not valid. A Fault is a value: its methods return copies and never
// modify the receiver, so one Fault may be used by many Fail calls.
type Fault struct {
	kind   string
	status int
	body   []byte // envelope of RateLimit, Error and Plugin
	size   int
	chunk  int
	every  time.Duration
	header http.Header
}

// Kind returns the kind of f, the value [Request.Fault] holds for a request
// f answered: "rate_limit", "error", "plugin", "proxy_html", "truncated",
// "reset_connection", "slow_body" or "stall"; "" for the zero Fault.
func (f Fault) Kind() string { return f.kind }

// WithHeader returns a copy of f that also sends the response header key
// with value, for example a Retry-After on a 503. Calling it again with the
// same key adds another value. The header replaces any the server would set
// itself, including Content-Type, except on [ResetConnection], which cuts
// the response head short and sends no header of the fault's.
func (f Fault) WithHeader(key, value string) Fault {
	h := f.header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	h.Add(key, value)
	f.header = h
	return f
}

// RateLimit returns a fault that answers 429 Too Many Requests with the
// envelope code "rate_limit_exceeded" and, unless retryAfter is empty, the
// header Retry-After: retryAfter. retryAfter is sent as given, so it may be
// delay-seconds, an HTTP-date or something malformed.
func RateLimit(retryAfter string) Fault {
	f := Fault{
		kind:   kindRateLimit,
		status: http.StatusTooManyRequests,
		body:   errorBody("rate_limit_exceeded", "Rate limit exceeded. Retry after the delay in the Retry-After header."),
	}
	if retryAfter != "" {
		f = f.WithHeader("Retry-After", retryAfter)
	}
	return f
}

// Error returns a fault that answers status with the envelope
// {"error":{"code":code,"message":message}}. The code is normally a string
// such as "not_found" or an int such as 8102; any other value is encoded as
// JSON as it is, which lets a test send a malformed envelope. Error panics
// if status is not in 200-599 or code cannot be encoded as JSON.
func Error(status int, code any, message string) Fault {
	checkStatus("Error", status)
	return Fault{kind: kindError, status: status, body: errorBody(code, message)}
}

// Plugin returns a fault that answers status with a plugin's error envelope:
// the numeric code (normally 8000-8999, 8AAA where AAA identifies the
// plugin), message, the "retryable" flag and a "details" object naming the
// plugin. Plugin panics if status is not in 200-599.
func Plugin(status, code int, message string, retryable bool) Fault {
	checkStatus("Plugin", status)
	b, _ := json.Marshal(envelope{Error: envelopeError{
		Code:      code,
		Message:   message,
		Retryable: &retryable,
		Details:   map[string]any{"plugin_id": pluginID(code), "attempt": 1},
	}})
	return Fault{kind: kindPlugin, status: status, body: b}
}

// pluginID returns the ID of the built-in plugin whose code range holds code,
// or "plugin-AAA" for another 8AAA code.
func pluginID(code int) string {
	for _, p := range builtinPlugins {
		if p.CodeRange != nil && code >= p.CodeRange.From && code <= p.CodeRange.To {
			return p.ID
		}
	}
	return fmt.Sprintf("plugin-%03d", code%1000)
}

// ProxyHTML returns a fault that answers status with a text/html page like
// the one an nginx or Cloudflare gateway sends (for example for 502), with no
// JSON envelope. ProxyHTML panics if status is not in 200-599.
func ProxyHTML(status int) Fault {
	checkStatus("ProxyHTML", status)
	return Fault{kind: kindProxyHTML, status: status}
}

// Truncated returns a fault that answers status with a JSON body cut off
// half-way, and a Content-Length that matches the cut body, so the response
// itself is complete but its JSON is not. For status 400 and above the body
// is the start of an error envelope; below 400 it is the start of a
// pipeline. Truncated panics if status is not in 200-599.
func Truncated(status int) Fault {
	checkStatus("Truncated", status)
	return Fault{kind: kindTruncated, status: status}
}

// ResetConnection returns a fault that cuts the connection inside the
// response head: the server takes over the connection, sends the start of
// a head (cutHead: a status line and one header, without the blank line
// that ends a head) and closes the connection.
//
// The client sees the same outcome on every run, on a new or a reused
// keep-alive connection: net/http's Transport returns an error that
// matches io.ErrUnexpectedEOF ("net/http: HTTP/1.x transport connection
// broken: unexpected EOF"), and does not send the request again by itself,
// since part of a response arrived (it re-sends an idempotent request on
// its own only when a reused connection closes before any byte of the
// answer, which is why the fault does not close the connection bare). So
// the server records exactly one request per fault. Through a
// neuracraft.Transport the error is a *neuracraft.RequestError that
// unwraps to it, which the Transport retries for idempotent requests, like
// any connection cut before the head ended.
//
// Over HTTP/2 (see [NewTLSServer]), where the connection carries other
// requests, it resets the request's stream instead, with RST_STREAM
// INTERNAL_ERROR, before any response head.
func ResetConnection() Fault {
	return Fault{kind: kindReset}
}

// cutHead is what [ResetConnection] sends before it closes the connection.
const cutHead = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"

// SlowBody returns a fault that sends the status and headers at once, with
// Content-Length: size, then the size bytes of the body in chunks of chunk
// bytes, flushing each, waiting every before each chunk. For status 400 and
// above the body is an error envelope padded with spaces to size; below 400
// it is a JSON object padded the same way. A size smaller than the JSON
// document cuts it. When the client goes away or the server is closed first,
// the server drops the connection, so the client sees an unexpected EOF.
// SlowBody panics if status is not in 200-599, size is
// negative or chunk is not positive; an every of 0 or less does not wait.
func SlowBody(status int, size int, chunk int, every time.Duration) Fault {
	checkStatus("SlowBody", status)
	if size < 0 || chunk <= 0 {
		panic(fmt.Sprintf("neuracrafttest: SlowBody: invalid size %d or chunk %d", size, chunk))
	}
	return Fault{kind: kindSlowBody, status: status, size: size, chunk: chunk, every: max(every, 0)}
}

// Stall returns a fault that sends the status and headers, flushes them, and
// then sends nothing more until the client goes away or the server is
// closed, when it drops the connection; the body never ends cleanly. A
// client needs a deadline or a canceled context to get out. Stall panics
// if status is not in 200-599.
func Stall(status int) Fault {
	checkStatus("Stall", status)
	return Fault{kind: kindStall, status: status}
}

func checkStatus(fn string, status int) {
	if status < 200 || status > 599 {
		panic(fmt.Sprintf("neuracrafttest: %s: invalid status %d", fn, status))
	}
}

// serveFault answers r with f. It returns when the answer is complete. When
// the client goes away or the server closes during a Stall or a SlowBody, it
// panics with http.ErrAbortHandler, so that the server drops the connection
// rather than end the response cleanly.
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f.kind {
	case kindReset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil { // HTTP/2: reset the stream
			panic(http.ErrAbortHandler)
		}
		// A graceful close (FIN, not RST) after the partial head, so that
		// the bytes are never discarded on the way and the client always
		// sees them before the end.
		_, _ = io.WriteString(conn, cutHead)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = conn.Close()

	case kindRateLimit, kindError, kindPlugin:
		f.writeHead(w, "application/json", len(f.body))
		_, _ = w.Write(f.body)

	case kindProxyHTML:
		text := strconv.Itoa(f.status) + " " + statusText(f.status)
		body := "<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" +
			text + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
		f.writeHead(w, "text/html", len(body))
		_, _ = io.WriteString(w, body)

	case kindTruncated:
		full := successDocument
		if f.status >= 400 {
			full = errorBody(defaultCode(f.status), statusText(f.status))
		}
		cut := full[:len(full)/2]
		f.writeHead(w, "application/json", len(cut))
		_, _ = w.Write(cut)

	case kindSlowBody:
		doc := successDocument
		if f.status >= 400 {
			doc = errorBody(defaultCode(f.status), statusText(f.status))
		}
		doc = doc[:min(len(doc), f.size)]
		body := io.MultiReader(bytes.NewReader(doc), io.LimitReader(spaces{}, int64(f.size-len(doc))))
		rc := http.NewResponseController(w)
		f.writeHead(w, "application/json", f.size)
		_ = rc.Flush()
		for left := f.size; left > 0; left -= f.chunk {
			if !s.wait(r, f.every) {
				panic(http.ErrAbortHandler)
			}
			if _, err := io.CopyN(w, body, int64(min(left, f.chunk))); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}

	case kindStall:
		f.writeHead(w, "application/json", -1)
		_ = http.NewResponseController(w).Flush()
		s.wait(r, -1)
		panic(http.ErrAbortHandler)
	}
}

// successDocument is the JSON that Truncated and SlowBody send below 400.
var successDocument = []byte(`{"id":"pipe_0123456789ab","name":"nightly-etl","created_at":"2025-01-01T00:00:00Z"}`)

// writeHead sets Content-Type, Content-Length (unless size is negative) and
// the fault's own headers, which win, then writes the status.
func (f Fault) writeHead(w http.ResponseWriter, contentType string, size int) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	if size >= 0 {
		h.Set("Content-Length", strconv.Itoa(size))
	}
	for k, v := range f.header {
		h[k] = append([]string(nil), v...)
	}
	w.WriteHeader(f.status)
}

// wait blocks for d, or until the client goes away or the server is closing
// when d is negative. It reports whether the full d elapsed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	if d == 0 {
		return true
	}
	var elapsed <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-elapsed:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

// spaces is an endless reader of ASCII spaces, JSON's padding.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
