// This file holds the JSON writers and the API's error envelope.

package neuracrafttest

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// envelope is the API's error body, {"error":{"code":...,"message":...}}.
type envelope struct {
	Error envelopeError `json:"error"`
}

type envelopeError struct {
	Code      any            `json:"code"`
	Message   string         `json:"message"`
	Retryable *bool          `json:"retryable,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// errorBody returns the encoded envelope with code and message.
func errorBody(code any, message string) []byte {
	b, err := json.Marshal(envelope{Error: envelopeError{Code: code, Message: message}})
	if err != nil {
		panic("neuracrafttest: cannot encode error code: " + err.Error())
	}
	return b
}

// writeError answers with status and the envelope with code and message.
func writeError(w http.ResponseWriter, status int, code any, message string) {
	writeRawJSON(w, status, errorBody(code, message))
}

// writeJSON answers with status and v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("neuracrafttest: cannot encode response: " + err.Error())
	}
	writeRawJSON(w, status, b)
}

// writeRawJSON answers with status and the JSON document body.
func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// defaultCode returns the platform error code the API uses for status.
func defaultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "invalid_api_key"
	case http.StatusForbidden:
		return "insufficient_scope"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusServiceUnavailable:
		return "service_unavailable"
	case http.StatusGatewayTimeout:
		return "gateway_timeout"
	}
	if status >= 500 {
		return "internal_error"
	}
	return "invalid_request"
}

// statusText returns the reason phrase of status, or "Error" when there is
// none.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}
