// This file holds the Transport's response mode (ReturnErrorResponses):
// the final error answer returned as a response, with its body in memory,
// how FromResponse finds the *APIError of such a response, and
// WithLastError, for generated clients that never return the response.

package neuracraft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// finish ends a call that failed with err, the error RoundTrip would
// return. It records the *APIError of the call's last answer (nil when it
// got none) in the holder of [WithLastError], if the context has one.
// With ReturnErrorResponses, an err that is the *APIError of the call's
// final answer comes back as that answer, the response, with a nil error,
// unless the server asked for a wait beyond MaxRetryAfter.
func (c *call) finish(err error) (*http.Response, error) {
	var last *APIError
	errors.As(err, &last)
	if h, ok := c.ctx.Value(lastErrorKey{}).(*lastError); ok {
		h.p.Store(last)
	}
	if last == nil {
		return nil, err
	}
	head, raw := last.head, last.raw
	last.head, last.raw = nil, nil // the error keeps no response once the call ends
	// err is the answer itself, not a wait or a rewind that ended the call
	// after it.
	if head == nil || err != error(last) || last.stop == stopRetryAfter {
		return nil, err
	}
	if raw == nil {
		raw = last.Body
	}
	return answerResponse(head, raw, last, c.out), nil
}

// responseHead returns a copy of resp without its Body and Request, for
// [Transport.decode] to keep in APIError.head when the Transport returns
// error answers as responses.
func responseHead(resp *http.Response) *http.Response {
	head := *resp
	head.Body, head.Request = nil, nil
	return &head
}

// answerResponse turns head, the head of the error answer that apiErr
// decoded, into the response RoundTrip returns: its Body reads raw, the
// body as the server sent it (apiErr.Body, unless credentials were hidden
// from that: the caller's answer is the server's, only its error is
// hidden), and its Request is a copy of sent whose context holds apiErr
// for [FromResponse].
func answerResponse(head *http.Response, raw []byte, apiErr *APIError, sent *http.Request) *http.Response {
	body := new(errorBody)
	body.r.Reset(raw)
	head.ContentLength = int64(len(raw))
	switch {
	case apiErr.Truncated:
		body.end = fmt.Errorf("%w; body longer than MaxErrorBody, cut after %d bytes", apiErr, len(raw))
	case apiErr.readErr != nil:
		body.end = fmt.Errorf("%w; body incomplete: %w", apiErr, apiErr.readErr)
	}
	if body.end != nil {
		head.ContentLength = -1
	}
	head.Body = body
	head.Request = sent.WithContext(context.WithValue(sent.Context(), answerKey{}, &errorAnswer{resp: head, err: apiErr}))
	return head
}

// answerKey is the context key, in the context of a returned error
// answer's Request, of the *errorAnswer that FromResponse looks up.
type answerKey struct{}

// errorAnswer ties a response that a Transport returned to the *APIError it
// decoded from it. The context of resp.Request holds it; FromResponse
// trusts it only for that very resp, not for another response to the
// same request.
type errorAnswer struct {
	resp *http.Response
	err  *APIError
}

// answerOf returns the *APIError a Transport decoded from resp, when resp
// is an error answer that the Transport returned, else nil. The lookup
// goes through resp.Request rather than resp.Body because http.Client
// (when it has a Timeout) and tracing transports such as otelhttp's
// replace the body with a wrapper of their own.
func answerOf(resp *http.Response) *APIError {
	if resp.Request == nil {
		return nil
	}
	if a, ok := resp.Request.Context().Value(answerKey{}).(*errorAnswer); ok && a.resp == resp {
		return a.err
	}
	return nil
}

// errorBody is the Body of an error answer that a Transport returns as a
// response: the bytes it kept (at most MaxErrorBody), in memory. Read
// returns end instead of io.EOF after the last byte when the body is not
// whole. Close releases nothing, and reading after it still works; Seek
// rewinds.
type errorBody struct {
	r   bytes.Reader
	end error // why the body is incomplete, or nil
}

func (b *errorBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.end != nil {
		err = b.end
	}
	return n, err
}

func (b *errorBody) Seek(offset int64, whence int) (int64, error) { return b.r.Seek(offset, whence) }

func (b *errorBody) Close() error { return nil }

// lastErrorKey is the context key of the holder of [WithLastError].
type lastErrorKey struct{}

// lastError holds the *APIError of the last call that ended without a
// success.
type lastError struct{ p atomic.Pointer[APIError] }

// WithLastError returns a copy of ctx that records the outcome of calls
// through a [Transport], and a function that returns the [*APIError] of
// the last answer recorded: for a client that never hands back the
// *http.Response (an ogen client returns typed results only), it is what
// [FromResponse] is for the *http.Response.
//
// Each call made with the returned context (or a context derived from it)
// that ends without a success sets it: to the *APIError of the call's last
// answer, also when ReturnErrorResponses returned that answer as a
// response or a cancelled wait ended the call after it, or to nil when the
// call got no answer (a network failure, a request held back by a
// cooldown). A call that succeeds leaves it as it was (so that the success
// path costs nothing more): read it after a call that did not succeed, or
// give each call a context of its own. It holds one *APIError, whose body
// is at most MaxErrorBody bytes, and nothing else.
//
// The function is safe for concurrent use, and so is the context; when
// calls made with it end at the same time, the last to end wins.
func WithLastError(ctx context.Context) (context.Context, func() *APIError) {
	h := new(lastError)
	return context.WithValue(ctx, lastErrorKey{}, h), h.p.Load
}
