// This file holds the minimal retrying RoundTripper built on
// github.com/cenkalti/backoff/v5 that the bench compares with: our own
// code, the few lines a user writes when they pick that library instead of
// a retrying HTTP client.

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cenkalti/backoff/v5"
)

// backoffTransport retries a request through base with
// backoff.NewExponentialBackOff's defaults (500 ms growing by 1.5, ±50%
// jitter, 60 s cap) and backoff.Retry's defaults (no limit on attempts,
// 15 minutes in all), so the caller's context is what ends a retry loop.
// It retries a network error and any 5xx answer, whatever the method; it
// does not read Retry-After and passes every other answer (429 included)
// through. When it gives up on a 5xx it returns an error, not the
// response. A body is sent again from GetBody; a request with a body and
// no GetBody is sent once.
type backoffTransport struct {
	base http.RoundTripper
}

// errNoReplay stops the retries of a request whose body cannot be sent
// again.
var errNoReplay = errors.New("request body cannot be sent again")

func (t *backoffTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	attempt := 0
	return backoff.Retry(req.Context(), func() (*http.Response, error) {
		r := req
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, backoff.Permanent(errNoReplay)
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, backoff.Permanent(err)
			}
			r = new(http.Request)
			*r = *req // a shallow copy: RoundTrip must not change req
			r.Body = body
		}
		attempt++
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 500 {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			_ = resp.Body.Close()
			return nil, fmt.Errorf("server answered %s", resp.Status)
		}
		return resp, nil
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()))
}
