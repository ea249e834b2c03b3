// This file reads and decodes a failed response into an *APIError:
// FromResponse and the bounded body reader.

package neuracraft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// defaultMaxErrorBody is how many bytes of an error response's body
// [FromResponse] and [Transport] keep, by default: 64 KiB.
const defaultMaxErrorBody = 64 << 10

// maxDrain is how many bytes past the kept part of an error body are read
// and thrown away so that the connection can be reused. A longer body is
// closed unread, which costs the connection but not the time.
const maxDrain = 256 << 10

// maxPrealloc is the most readCapped allocates before it has read
// anything; a longer body grows the buffer as it comes.
const maxPrealloc = 1 << 20

// maxMessage is the longest Message, in runes, taken from a body.
const maxMessage = 300

// FromResponse returns nil for a response with status 1xx-3xx, leaving its
// body untouched. For 4xx and 5xx it reads at most the
// first 64 KiB of the body, drains a bounded amount more, closes the body, and
// returns an [*APIError]: always that type, whatever the body holds (JSON
// envelope, HTML from a gateway, nothing, a cut-off or invalid document).
func FromResponse(resp *http.Response) error {
	if resp == nil {
		return errors.New("neuracraft: FromResponse: nil response")
	}
	if resp.StatusCode < 400 {
		return nil
	}
	return newAPIError(resp, defaultMaxErrorBody)
}

// newAPIError decodes an error response, keeping at most limit bytes of its
// body, and closes the body.
func newAPIError(resp *http.Response, limit int64) *APIError {
	if limit <= 0 {
		limit = defaultMaxErrorBody
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
