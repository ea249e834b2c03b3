// This file holds Client, a small JSON client for the NeuraCraft API built
// on Transport, and Response, the metadata of a successful call.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// DefaultBaseURL is the hosted NeuraCraft API. Self-hosted installs serve
// the same API under <service-url>/api/v1.
const DefaultBaseURL = "https://api.neuracraft.com/v1"

// defaultMaxResponseBody is the largest success body a [Client] decodes
// by default: 10 MiB.
const defaultMaxResponseBody = 10 << 20

// Environment variables a [Client] reads for the fields left empty.
const (
	EnvBaseURL = "NEURACRAFT_BASE_URL"
	EnvAPIKey  = "NEURACRAFT_API_KEY"
)

// userAgent names this SDK in requests.
const userAgent = "neuracraft-go"

// Client makes JSON calls to the NeuraCraft API: [Client.Do] sends a JSON
// body, decodes a JSON success into a value of the caller's and returns
// the response's metadata. Failures come back as [*APIError] (or, for a
// request held back by a cooldown, [*CooldownError]); every call is sent
// through a [Transport], so transient failures are retried.
//
// The zero value is ready to use: it reads NEURACRAFT_BASE_URL and
// NEURACRAFT_API_KEY from the environment and sends requests through a
// Transport over http.DefaultTransport. Credentials are sent only over
// HTTPS, or plain HTTP to a loopback address (for tests and
// [github.com/neuracraft/neuracraft-go/neuracrafttest]), and only to URLs
// under BaseURL: a redirect that leaves it (another scheme, host or port,
// or a path outside BaseURL's) is followed without them. They never appear
// in errors, and a *Client prints without them with every fmt verb and
// in log/slog (String, Format and LogValue), BaseURL without user
// information or secret query values. (Print the *Client: a Client value
// has no methods, and copying one is a mistake go vet reports, since it
// holds a sync.Once.)
//
// A Client is safe for concurrent use. Do not change its fields after the
// first call.
type Client struct {
	// BaseURL is the API's base URL, such as DefaultBaseURL or
	// "https://neuracraft.example.com/api/v1". Empty means the
	// NEURACRAFT_BASE_URL environment variable, or DefaultBaseURL when that
	// is empty too.
	BaseURL string

	// APIKey is sent in the X-API-Key header. Empty means the
	// NEURACRAFT_API_KEY environment variable.
	APIKey string

	// Token is an OAuth 2.0 access token. When set, it is sent as
	// "Authorization: Bearer <Token>" and APIKey is not sent.
	Token string

	// HTTPClient sends the requests. nil means a client whose transport is
	// a Transport over http.DefaultTransport, with the defaults of
	// [RetryPolicy]. A client given here is wrapped as [WrapClient] does,
	// unless its transport already is a *Transport, which is then used as
	// it is; the client itself is not modified. So a Client's retry policy
	// is its Transport's: to choose one, give HTTPClient a Transport,
	//
	//	&http.Client{Transport: &neuracraft.Transport{Retry: policy}}
	HTTPClient *http.Client

	// MaxResponseBody is the largest success body decoded; a larger one is
	// an error, never silently cut. Zero means 10 MiB.
	MaxResponseBody int64

	// rand returns a float in [0, 1) for the jitter of WaitRun's polls;
	// nil means math/rand/v2. Tests set it.
	rand func() float64

	once sync.Once
	hc   *http.Client
}

// Response is the metadata of a successful call.
type Response struct {
	// StatusCode is the HTTP status: 200, 201, 202, ...
	StatusCode int
	// RequestID is the response's X-Request-ID, else the one sent, cleaned
	// like [APIError.RequestID].
	RequestID string
	// Location is the parsed Location header of a 201 Created (the new
	// resource's URL, resolved against the request URL), or nil.
	Location *url.URL
	// TaskID identifies the asynchronous operation of a 202 Accepted: the
	// body's "task_id", else its "run_id".
	TaskID string
	// MonitorURL is the body's "monitor_url" of a 202 Accepted, if any.
	MonitorURL string
	// Header is the response's header.
	Header http.Header
}

// httpClient returns the client that sends the calls, built on first use.
func (c *Client) httpClient() *http.Client {
	c.once.Do(func() {
		w := WrapClient(c.HTTPClient)
		w.CheckRedirect = keepCredentialsHome(w.CheckRedirect, c.underBase)
		c.hc = w
	})
	return c.hc
}

// Do calls the API: method on path, which is relative to BaseURL and may
// carry a query ("/pipelines?limit=10"), or an absolute URL under BaseURL
// (such as a monitor_url). Either form is resolved first (dot segments
// removed, "%2E" counted as a dot) and must stay under BaseURL, else Do
// fails without sending anything. A non-nil in is sent as JSON; a JSON
// success body is decoded into out unless out is nil. It returns the
// response's metadata.
//
// Errors: an [*APIError] for a status of 400 or more; a [*CooldownError]
// for a request held back; a [*RequestError] for a request that got no
// answer; an error naming the status and request ID when a success body
// is not the JSON promised, is larger than MaxResponseBody, or a 201's
// Location header does not parse. Errors from ctx match ctx.Err() with
// errors.Is.
//
// The *Response is nil whenever the error is not. Note that a 201 or 202
// whose body could not be decoded still created or started something on
// the server: the error text names the status and request ID, and out
// may have been partly filled.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (_ *Response, err error) {
	defer c.hide(&err) // hide.go
	req, err := c.newRequest(ctx, method, path, in)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			if isOwnError(urlErr.Err) {
				return nil, urlErr.Err // already names the request, without http.Client's repetition
			}
			urlErr.URL = redactURL(req.URL)
		}
		return nil, err
	}
	if resp.StatusCode >= 400 {
		// HTTPClient's Transport handed a 4xx or 5xx back as a response
		// rather than as an error (a transport not ours, or ours with
		// ReturnErrorResponses): the same *APIError (without the
		// credentials, as every error of Do), decoded here.
		return nil, FromResponse(resp)
	}
	defer resp.Body.Close()
	meta := &Response{StatusCode: resp.StatusCode, Header: resp.Header, RequestID: answerRequestID(resp)}
	fail := func(err error) error { return answerError(method, req.URL.EscapedPath(), meta, err) }
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode == http.StatusCreated {
		u, err := req.URL.Parse(loc)
		if err != nil {
			if urlErr, ok := err.(*url.Error); ok {
				err = urlErr.Err // the reason, without echoing the server's header
			}
			return nil, fail(fmt.Errorf("invalid Location header: %w", err))
		}
		meta.Location = u
	}
	limit := c.MaxResponseBody
	if limit <= 0 {
		limit = defaultMaxResponseBody
	}
	body, truncated, err := readCapped(resp.Body, limit, resp.ContentLength)
	if err != nil {
		return nil, fail(fmt.Errorf("reading the response body: %w", err))
	}
	if truncated {
		return nil, fail(fmt.Errorf("response body larger than %d bytes, not decoded", limit))
	}
	body = bytes.TrimPrefix(body, utf8BOM) // as decode does for an error body
	if resp.StatusCode == http.StatusAccepted && len(body) > 0 {
		var task struct {
			TaskID     string `json:"task_id"`
			RunID      string `json:"run_id"`
			MonitorURL string `json:"monitor_url"`
		}
		if err := json.Unmarshal(body, &task); err == nil {
			meta.TaskID, meta.MonitorURL = task.TaskID, task.MonitorURL
			if meta.TaskID == "" {
				meta.TaskID = task.RunID
			}
		}
	}
	if out != nil && len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return nil, fail(fmt.Errorf("decoding the response body: %w", err))
		}
	}
	return meta, nil
}

// callError is a failed Client call that is neither an answer of 400 or
// more nor the Transport's: a request that could not be built or may not
// carry its credentials, or a successful answer whose body or headers
// could not be used. It names the call (and the answer's status and
// request ID, once there is one) on one line, and unwraps to the cause.
type callError struct {
	method, path string
	status, id   string // the answer's code ("200 OK") and request ID, or ""
	err          error
}

func (e *callError) Error() string {
	return errorLine(e.method, e.path, e.status, e.err.Error(), requestNote(e.id))
}

func (e *callError) Unwrap() error { return e.err }

// answerError is the error of a successful answer, resp, to method path
// that could not be used because of err.
func answerError(method, path string, resp *Response, err error) error {
	return &callError{method: method, path: path, status: Code(resp.StatusCode).String(), id: resp.RequestID, err: err}
}

// isOwnError reports whether err comes from this package's Transport,
// whose errors already name the method, path and request ID.
func isOwnError(err error) bool {
	var apiErr *APIError
	var cooldown *CooldownError
	var reqErr *RequestError
	return errors.As(err, &apiErr) || errors.As(err, &cooldown) || errors.As(err, &reqErr)
}
