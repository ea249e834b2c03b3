// This file reads and decodes a failed response into an *APIError:
// FromResponse and the bounded body reader.

package neuracraft

import (
	"bytes"
	"cmp"
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

// maxMessage is the longest Message, in characters, taken from a body.
const maxMessage = 300

// FromResponse returns nil for a response with status 1xx-3xx, leaving its
// body untouched. For 4xx and 5xx it reads at most the
// first 64 KiB of the body, drains a bounded amount more, closes the body, and
// returns an [*APIError]: always that type, whatever the body holds (JSON
// envelope, HTML from a gateway, nothing, a cut-off or invalid document).
// The credentials of resp.Request and of its redirect chain (API key,
// Authorization, the secrets of their URLs) are hidden from the error,
// wherever the server echoed them, by the rule a [Transport] applies.
//
// A response that a [Transport] with ReturnErrorResponses returned is not
// read again: FromResponse closes its body (which stays readable, in
// memory) and returns the *APIError the Transport decoded, the same value,
// with its RequestID, Attempts and retry notes, also when the body was
// read already (as generated clients do). [WithLastError] reaches the
// same *APIError for a client that never returns the *http.Response.
func FromResponse(resp *http.Response) error {
	if resp == nil {
		return errors.New("neuracraft: FromResponse: nil response")
	}
	if resp.StatusCode < 400 {
		return nil
	}
	if apiErr := answerOf(resp); apiErr != nil {
		if resp.Body != nil {
			_ = resp.Body.Close() // stops the timer of an http.Client's Timeout
		}
		return apiErr
	}
	apiErr := newAPIError(resp, defaultMaxErrorBody)
	if secrets := credentialsOf(resp.Request); len(secrets) > 0 {
		apiErr.hide(secrets)
	}
	return apiErr
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
		RequestID:  answerRequestID(resp),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	if req := resp.Request; req != nil {
		e.Method = req.Method
		e.URL = redactURL(req.URL)
	}
	if resp.Body != nil {
		var err error
		e.Body, e.Truncated, err = readCapped(resp.Body, limit, resp.ContentLength)
		if err != nil {
			e.Err, e.readErr = fmt.Errorf("reading error body: %w", err), err
		}
		if e.Truncated {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
		}
		_ = resp.Body.Close()
	}
	e.decode(resp.Header)
	return e
}

// answerRequestID is the request ID that names resp: its X-Request-ID,
// cleaned (see [APIError.RequestID]), else the one its request was sent
// with.
func answerRequestID(resp *http.Response) string {
	id := cleanHeaderValue(resp.Header.Get(requestIDHeader))
	if id == "" && resp.Request != nil {
		id = cleanHeaderValue(resp.Request.Header.Get(requestIDHeader))
	}
	return id
}

// readCapped reads at most limit bytes of r and reports whether there was
// more, without ever holding more than limit+1 bytes. A content length
// sizes the buffer in one allocation; without one (-1, or 0, which a
// Response built by hand has whatever its body) the buffer starts at 512
// bytes, as io.ReadAll's does. Error and success bodies both go through
// it.
func readCapped(r io.Reader, limit, contentLength int64) (body []byte, truncated bool, err error) {
	limit = min(limit, math.MaxInt64-1) // limit+1 must not overflow
	size := min(limit+1, 512)
	if contentLength > 0 {
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

// The decoder reads the error-body shapes below in one json.Unmarshal,
// into an envelope whose leaves are lenient types: a field of the wrong
// type spoils only itself, and no part is unmarshalled again.
//
//	{"error": {"code": 8102 | "8102" | "not_found", "message": "...",
//	           "details": <any JSON>, "retryable": true}}      NeuraCraft
//	{"error": "invalid_client", "error_description": "..."}   RFC 6749 §5.2
//	{"error": "text"}
//	{"message": "text"}
//
// Only when "error" is not an object (the string shapes) does the body
// take a second, smaller pass (oauthEnvelope).
type envelope struct {
	Error       *errorObject `json:"error"`
	Message     jsonText     `json:"message"`
	Description jsonText     `json:"error_description"`
}

type errorObject struct {
	Code      jsonCode  `json:"code"`
	Message   jsonText  `json:"message"`
	Details   jsonValue `json:"details"`
	Retryable jsonBool  `json:"retryable"`
}

// oauthEnvelope reads a body whose "error" is not an object: the OAuth
// shape of RFC 6749 section 5.2, or {"error": "text"}.
type oauthEnvelope struct {
	Error       jsonText `json:"error"`
	Message     jsonText `json:"message"`
	Description jsonText `json:"error_description"`
}

// utf8BOM is the byte order mark some servers put before a UTF-8 body,
// which JSON does not allow and decode skips.
var utf8BOM = []byte("\ufeff")

// decode fills Code, Reason, Message, Details and Retryable from Body and,
// for what the body leaves out, from a Bearer challenge in the
// WWW-Authenticate header (RFC 6750 section 3). It never fails: what
// cannot be decoded is left out, Message falls back to the body's text or
// the status text, and a JSON syntax error is kept in Err.
func (e *APIError) decode(h http.Header) {
	body := bytes.TrimSpace(bytes.TrimPrefix(e.Body, utf8BOM)) // some servers start their JSON with a byte order mark
	if len(body) > 0 && (body[0] == '{' || body[0] == '[') {
		var env envelope
		err := json.Unmarshal(body, &env)
		switch {
		case err == nil:
			e.decodeEnvelope(&env)
		case body[0] == '{' && isTypeError(err):
			// Valid JSON whose "error" is not an object: every other
			// field is lenient, so nothing else can be of the wrong type.
			var oauth oauthEnvelope
			if json.Unmarshal(body, &oauth) == nil {
				e.decodeOAuth(&oauth)
			}
		case e.Err == nil && !e.Truncated:
			e.Err = fmt.Errorf("decoding error body: %w", err)
		}
	}
	if e.Reason == "" || e.Message == "" {
		if v := h["Www-Authenticate"]; len(v) > 0 {
			code, desc := bearerError(v)
			if e.Reason == "" {
				e.Reason = cleanText(code, maxReason)
			}
			if e.Message == "" {
				e.Message = cleanText(cmp.Or(desc, code), maxMessage)
			}
		}
	}
	if e.Message == "" {
		e.Message = fallbackMessage(body, h.Get("Content-Type"), e.StatusCode)
	}
}

// isTypeError reports whether err is a *json.UnmarshalTypeError: valid
// JSON with a value of the wrong type.
func isTypeError(err error) bool {
	var typeErr *json.UnmarshalTypeError
	return errors.As(err, &typeErr)
}

func (e *APIError) decodeEnvelope(env *envelope) {
	obj := env.Error
	if obj == nil { // no "error", or null: {"message": "text"}
		e.Message = cleanText(cmp.Or(string(env.Message), string(env.Description)), maxMessage)
		return
	}
	if c := obj.Code; c.isNumber {
		if code := Code(c.number); code.IsPlugin() || (code >= 400 && code <= 599) {
			e.Code = code
		}
	} else {
		e.Reason = cleanText(c.reason, maxReason)
	}
	e.Message = cleanText(string(obj.Message), maxMessage)
	if len(obj.Details) > 0 {
		e.Details = json.RawMessage(obj.Details)
	}
	if obj.Retryable.set {
		hint := obj.Retryable.value
		e.Retryable = &hint
	}
}

// decodeOAuth reads a body whose "error" is a string: an OAuth error code
// with its description, or a message.
func (e *APIError) decodeOAuth(env *oauthEnvelope) {
	code := strings.TrimSpace(string(env.Error))
	if code == "" { // "error" is empty, or neither a string nor an object
		e.Message = cleanText(cmp.Or(string(env.Message), string(env.Description)), maxMessage)
		return
	}
	if isReasonWord(code) {
		e.Reason = code
	}
	e.Message = cleanText(cmp.Or(string(env.Description), code), maxMessage)
}

// maxReason is the longest Reason, in characters.
const maxReason = 64

// isReasonWord reports whether s reads as an error code rather than a
// sentence: at most maxReason letters, digits, '_', '.' and '-', with at
// least one letter ("invalid_client", "not_found").
func isReasonWord(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return letter && len(s) <= maxReason
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
