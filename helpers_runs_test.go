// Helpers for the tests of runs (runs.go, rundecode.go, runerror.go): the
// payloads of testdata/runs, a fake server with a pipeline and a Client for
// it, an in-memory Base that answers a script of run documents under
// synctest, and the check that a RunError is clean and capped.

package neuracraft

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// specRunMessage is the manual's example of a plugin failure.
const specRunMessage = "PDF Export Plugin: Failed to generate document due to invalid template."

// readRunFile returns the contents of testdata/runs/name.
func readRunFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "runs", name))
	require.NoError(t, err)
	return b
}

// runClient returns a Client of srv whose polls wait no backoff and whose
// transport makes maxAttempts attempts (0: the default), 1 ms apart.
func runClient(srv *neuracrafttest.Server, maxAttempts int) *Client {
	tr := &Transport{Retry: RetryPolicy{MaxAttempts: maxAttempts, BaseDelay: time.Millisecond}}
	return &Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: &http.Client{Transport: tr},
		rand: func() float64 { return 0 }}
}

// newRunServer starts a fake server, closed when t ends, with a pipeline.
func newRunServer(t *testing.T) (srv *neuracrafttest.Server, c *Client, pipelineID string) {
	t.Helper()
	srv = neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	c = runClient(srv, 0)
	var p struct {
		ID string `json:"id"`
	}
	_, err := c.Do(t.Context(), http.MethodPost, "/pipelines", map[string]string{"name": "invoices"}, &p)
	require.NoError(t, err)
	return srv, c, p.ID
}

// runAnswer is one answer of a runBase.
type runAnswer struct {
	status int // 0 means 200
	body   string
	header []string // key, value pairs
}

// runBase is an in-memory NeuraCraft for synctest: it answers the n-th
// request with answers[n] (the last answer repeats), with X-Request-ID
// req_<n>, and records when each request came.
type runBase struct {
	answers []runAnswer

	mu    sync.Mutex
	times []time.Time
}

func (b *runBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.times = append(b.times, time.Now())
	n := len(b.times)
	b.mu.Unlock()
	a := b.answers[min(n, len(b.answers))-1]
	h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_" + strconv.Itoa(n)}}
	for i := 0; i+1 < len(a.header); i += 2 {
		h.Set(a.header[i], a.header[i+1])
	}
	status := a.status
	if status == 0 {
		status = http.StatusOK
	}
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: status, Header: h, Request: req,
		Body: io.NopCloser(strings.NewReader(a.body)), ContentLength: int64(len(a.body))}, nil
}

// client returns a Client on b whose jitter comes from r (nil: random).
func (b *runBase) client(r func() float64) *Client {
	return &Client{BaseURL: "https://api.neuracraft.test/v1", APIKey: "nc_key_SECRET",
		HTTPClient: &http.Client{Transport: &Transport{Base: b}}, rand: r}
}

// gaps returns the time between consecutive requests.
func (b *runBase) gaps() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d []time.Duration
	for i := 1; i < len(b.times); i++ {
		d = append(d, b.times[i].Sub(b.times[i-1]))
	}
	return d
}

// runAnswerOf is a 200 answer with a run of status and the header
// key-value pairs.
func runAnswerOf(status string, header ...string) runAnswer {
	return runAnswer{body: `{"id":"run_1","status":"` + status + `"}`, header: header}
}

// checkRunErrorClean fails unless every text field of e is clean and
// capped, and Error is one line.
func checkRunErrorClean(t *testing.T, e *RunError) {
	t.Helper()
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"RunID", e.RunID, maxRunID}, {"Reason", e.Reason, maxRunReason}, {"Message", e.Message, maxMessage},
		{"PluginID", e.PluginID, maxRunID},
	} {
		require.Equal(t, f.value, cleanText(f.value, f.max+1), "%s not clean or not capped: %q", f.name, f.value)
		require.False(t, utf8.RuneCountInString(f.value) > f.max+1, "%s not clean or not capped: %q", f.name, f.value)
	}
	require.Equal(t, e.RequestID, cleanHeaderValue(e.RequestID), "RequestID not clean: %q", e.RequestID)
	require.LessOrEqual(t, len(e.Stack), maxStackFrames, "Stack has %d entries", len(e.Stack))
	for _, l := range e.Stack {
		require.NotEmpty(t, l, "stack entry not clean or not capped: %q", l)
		require.Equal(t, l, cleanText(l, maxMessage+1), "stack entry not clean or not capped: %q", l)
		require.False(t, utf8.RuneCountInString(l) > maxMessage+1, "stack entry not clean or not capped: %q", l)
	}
	require.False(t, e.Code != 0 && !e.Code.IsPlugin(), "Code %d is not a plugin code", e.Code)
	checkOneLine(t, "Error()", e.Error())
}
