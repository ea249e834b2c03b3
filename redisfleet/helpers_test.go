// This file holds the helpers shared by the tests of package redisfleet:
// the leak check, members on a test Redis or without one, a Transport whose
// requests to the API's host go to a test server, and the error log a
// Fleet reports to. The redis-server itself is in server_test.go.

package redisfleet

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/neuracraft/neuracraft-go"
)

const host = "api.neuracraft.test"

// schedulingMargin is what a timer may fire late on a busy machine (CI
// runners, -race): bounds on waits are OpTimeout plus this.
const schedulingMargin = 200 * time.Millisecond

// noLeaks checks, at the very end of t (after every other cleanup), that
// no goroutine started by the test is left.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// errLog collects what a Fleet reports through OnError.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// count returns how many of the errors reported match target (nil: all).
func (l *errLog) count(target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, err := range l.errs {
		if target == nil || errors.Is(err, target) {
			n++
		}
	}
	return n
}

// all returns a copy of the errors reported so far.
func (l *errLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// offline is a Fleet without Redis: enough for what a member does in
// memory.
func offline(opts Options) *Fleet { return New(nil, opts) }

// member starts a Fleet on its own client to s, closed at the end of t.
func member(t *testing.T, s *redisServer, opts Options) *Fleet {
	t.Helper()
	f := New(s.client(t), opts)
	t.Cleanup(func() { f.Close() })
	return f
}

// waitFor polls cond every millisecond up to limit and returns how long
// it took to become true, and whether it did.
func waitFor(limit time.Duration, cond func() bool) (took time.Duration, ok bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			return time.Since(start), true
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start), false
}

// transport is a neuracraft.Transport whose requests to any test server
// count as requests to host, with f as its Coordinator (nil: none).
func transport(f *Fleet) *neuracraft.Transport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 16
	tr := &neuracraft.Transport{Base: hostAs{base}}
	if f != nil {
		tr.Coordinator = f
	}
	return tr
}

// hostAs sends requests for host to the test server named in the
// X-Test-Server header.
type hostAs struct{ *http.Transport }

func (h hostAs) RoundTrip(req *http.Request) (*http.Response, error) {
	u, err := url.Parse(req.Header.Get("X-Test-Server"))
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = u.Scheme, u.Host, u.Host
	return h.Transport.RoundTrip(out)
}

// get sends GET https://host/v1/pipelines through tr to the test server at
// server, with X-Request-ID id, and reads and closes the answer's body; an
// error closing it is returned with the response.
func get(ctx context.Context, tr http.RoundTripper, server, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+host+"/v1/pipelines", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Test-Server", server)
	req.Header.Set("X-Request-ID", id)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, resp.Body.Close()
}
