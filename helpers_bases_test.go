// Helpers for the tests of package neuracraft that drive a Transport over
// a fake Base: scripted answers (scriptBase, step, answer) and what the
// Base was sent, a Base made of a function, one that fails every request,
// a connection reset, a request body that records its Close, the request
// the tests send, and what a success through a Transport allocates. The
// other helpers_*_test.go files hold the helpers of one kind of test each.

package neuracraft

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// step is one scripted answer of a scriptBase: a response or an error.
type step struct {
	status int
	header http.Header
	body   string
	err    error
}

// answer is a step that answers status with the header key-value pairs
// kv and a small error envelope.
func answer(status int, kv ...string) step {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return step{status: status, header: h, body: `{"error":{"code":"x","message":"scripted"}}`}
}

// sent is what a scriptBase received in one attempt.
type sent struct {
	at        time.Time
	method    string
	requestID string
	body      string
}

// scriptBase is a RoundTripper that answers from a script, repeating the
// last step when the script runs out, and records what it was sent.
type scriptBase struct {
	mu    sync.Mutex
	steps []step
	sent  []sent
}

func (s *scriptBase) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, sent{at: time.Now(), method: req.Method,
		requestID: req.Header.Get("X-Request-ID"), body: string(body)})
	st := s.steps[0]
	if len(s.steps) > 1 {
		s.steps = s.steps[1:]
	}
	if st.err != nil {
		return nil, st.err
	}
	return &http.Response{StatusCode: st.status, Header: st.header.Clone(),
		Body: io.NopCloser(strings.NewReader(st.body)), ContentLength: int64(len(st.body)), Request: req}, nil
}

func (s *scriptBase) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func (s *scriptBase) log() []sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sent(nil), s.sent...)
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// newReq is a request for method on a pipeline URL, with body when it is
// not empty.
func newReq(t *testing.T, ctx context.Context, method, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://api.neuracraft.com/v1/pipelines/pipe_1", r)
	require.NoError(t, err)
	return req
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// successAllocs is the allocations of a successful GET through tr, with
// the caller's request ID.
func successAllocs(t *testing.T, tr *Transport) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", "req_1")
	return testing.AllocsPerRun(200, func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}

// errReset is a connection reset, as a Base fails with it.
var errReset error = syscall.ECONNRESET

// failingBase answers 503 to every request, at once.
var failingBase = roundTripFunc(func(req *http.Request) (*http.Response, error) {
	const body = `{"error":{"code":"service_unavailable","message":"down"}}`
	return &http.Response{StatusCode: 503, Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
})
