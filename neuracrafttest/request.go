// This file holds request recording: the Request type and the Server
// methods that return what was received.

package neuracrafttest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
)

// maxRecordedBody is how much of a request body a Request keeps.
const maxRecordedBody = 64 << 10

// A Request is what the server recorded about one request it received.
type Request struct {
	// Route is the matched route pattern, such as "GET /pipelines/{id}",
	// or "" when the request matched no route.
	Route string

	// Method is the request method.
	Method string

	// Path is the request path, such as "/v1/pipelines/pipe_1".
	Path string

	// Query is the parsed query string.
	Query url.Values

	// Header is the request header as received. It holds the request's
	// credentials: never print it in logs.
	Header http.Header

	// Body is the first 64 KiB of the request body. For the token endpoint
	// it holds the client's secret when the client sent it in the form:
	// never print it in logs either.
	Body []byte

	// BodySize is the number of body bytes the server read. For a request
	// answered by a fault it is the whole body; otherwise it is what the
	// route consumed, which for a body over the route's limit stops just
	// past the limit.
	BodySize int64

	// Fault is the kind of fault that answered the request (see
	// [Fault.Kind]), or "" when the request was served normally.
	Fault string
}

// clone returns a deep copy of r.
func (r Request) clone() Request {
	c := r
	c.Query = url.Values{}
	for k, v := range r.Query {
		c.Query[k] = append([]string(nil), v...)
	}
	c.Header = r.Header.Clone()
	c.Body = bytes.Clone(r.Body)
	return c
}

// Requests returns a copy of every request the server has recorded since it
// started or since the last [Server.ResetRequests], in the order they were
// recorded. A request is recorded when the server starts to answer it, after
// it has read the body; a request held by a [Stall] is already recorded.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

// RequestsFor returns a copy of the recorded requests whose Route is route,
// in the order they were recorded. RequestsFor("") returns the requests that
// matched no route.
func (s *Server) RequestsFor(route string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if r.Route == route {
			out = append(out, r.clone())
		}
	}
	return out
}

// ResetRequests forgets every recorded request.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// record appends rec, with the body read so far, to the recorded requests.
func (s *Server) record(rec Request, body *bodyRecorder) {
	rec.Body = bytes.Clone(body.head)
	rec.BodySize = body.n
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
}

// A bodyRecorder wraps a request body, keeping its first maxRecordedBody
// bytes and counting all bytes read. It is used by one goroutine only.
type bodyRecorder struct {
	rc   io.ReadCloser
	head []byte
	n    int64
}

func (b *bodyRecorder) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if room := maxRecordedBody - len(b.head); room > 0 {
		b.head = append(b.head, p[:min(n, room)]...)
	}
	return n, err
}

func (b *bodyRecorder) Close() error { return b.rc.Close() }

// drain reads and discards the rest of the body. It stops at the first
// error, such as the client going away.
func (b *bodyRecorder) drain() { _, _ = io.Copy(io.Discard, b) }

// A recordingWriter calls commit once, before the first byte of the
// response is written, so that a request is recorded before its client can
// see the answer.
type recordingWriter struct {
	http.ResponseWriter
	commit    func()
	committed bool
}

func (w *recordingWriter) commitOnce() {
	if !w.committed {
		w.committed = true
		w.commit()
	}
}

func (w *recordingWriter) WriteHeader(code int) {
	w.commitOnce()
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.commitOnce()
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
