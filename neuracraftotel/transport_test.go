// Tests of the Observer on a real Transport against neuracrafttest, read
// with the OpenTelemetry SDK's ManualReader and SpanRecorder.

package neuracraftotel

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fast is a retry policy whose backoffs are at most a millisecond, for
// tests that run in real time.
var fast = neuracraft.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxAttempts: 10}

// newServer starts a neuracrafttest server whose route "GET /pipelines"
// first answers fault n times, and a client to it through a Transport
// with h's Observer and fast retries.
func newServer(t *testing.T, h *harness, n int, fault neuracrafttest.Fault) (*neuracrafttest.Server, *http.Client) {
	t.Helper()
	srv := neuracrafttest.NewServer()
	t.Cleanup(srv.Close)
	srv.Fail("GET /pipelines", n, fault)
	return srv, &http.Client{Transport: &neuracraft.Transport{Base: srv.Client().Transport, Retry: fast, Observer: h.obs}}
}

// fetch sends a GET to path of srv through client, with ctx, the server's
// API key and a request ID of the caller's, and returns its status, or
// the error.
func fetch(t *testing.T, ctx context.Context, client *http.Client, srv *neuracrafttest.Server, path string) (int, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", srv.APIKey)
	req.Header.Set("X-Request-ID", "req_caller_42")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestRetryAfter503: a GET answered 503 then 200 gives two attempts, one
// retry, one backoff wait and one neuracraft.retry event on the caller's
// span.
func TestRetryAfter503(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv, client := newServer(t, h, 1, neuracrafttest.Error(503, "service_unavailable", "Try again"))

	ctx, span := h.tracer.Start(context.Background(), "list pipelines")
	status, err := fetch(t, ctx, client, srv, "/pipelines?limit=5")
	span.End()
	require.NoError(t, err)
	require.Equal(t, 200, status)

	m := h.collect(t)
	server := serverAttrs(t, srv)
	want := map[string][]point{
		"neuracraft.client.attempts": {
			{Attrs: []string{"error.type=503", get, "http.response.status_code=503", server[0], server[1]}, Value: 1},
			{Attrs: []string{get, "http.response.status_code=200", server[0], server[1]}, Value: 1},
		},
		"neuracraft.client.retries": {
			{Attrs: []string{"error.type=503", get, "http.response.status_code=503", server[0], server[1]}, Value: 1},
		},
	}
	if diff := cmp.Diff(want, map[string][]point{"neuracraft.client.attempts": m["neuracraft.client.attempts"],
		"neuracraft.client.retries": m["neuracraft.client.retries"]}, bySortedText); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	waits := m["neuracraft.client.wait.duration"]
	require.Len(t, waits, 1)
	assert.Equal(t, []string{get, "neuracraft.wait.kind=backoff", server[0], server[1]}, waits[0].Attrs)
	assert.Equal(t, 1.0, waits[0].Value, "one wait")
	assert.NotContains(t, m, "neuracraft.client.stops")

	events := h.spanEvents()
	require.Len(t, events, 1)
	assert.True(t, strings.HasPrefix(events[0],
		"neuracraft.retry error.type=503 http.request.resend_count=1 http.response.status_code=503 neuracraft.retry.delay="), events[0])
	spans := h.waitSpans(t)
	require.Len(t, spans, 1)
	assert.True(t, strings.HasPrefix(spans[0], "neuracraft.wait.kind=backoff "), spans[0])
	assert.True(t, strings.HasSuffix(spans[0], " Unset under list pipelines"), spans[0])
}

// serverAttrs is the server.address and server.port attributes of srv.
func serverAttrs(t *testing.T, srv *neuracrafttest.Server) [2]string {
	t.Helper()
	host, port := splitHostPort(strings.TrimPrefix(strings.TrimSuffix(srv.URL, "/v1"), "http://"))
	require.NotZero(t, port)
	return [2]string{"server.address=" + host, "server.port=" + strconv.Itoa(port)}
}

// TestCooldownWait: a 429 with Retry-After: 1 holds the retry for one
// second (and a random part of a gap of the pace), as a cooldown wait,
// counted as held meanwhile, with a neuracraft.cooldown event on the
// caller's span and a span of its own; the 429 paces the host at 20
// requests a second.
func TestCooldownWait(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		tr := &neuracraft.Transport{Base: scripted(429, 200), Observer: h.obs}
		ctx, span := h.tracer.Start(context.Background(), "caller")
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := tr.RoundTrip(newRequest(t, ctx, "https://api.neuracraft.com/v1/pipelines"))
			if assert.NoError(t, err) {
				resp.Body.Close()
			}
		}()
		synctest.Wait() // held
		held := h.collect(t)["neuracraft.client.held"]
		assert.Equal(t, []point{{Attrs: []string{"neuracraft.wait.kind=cooldown", host}, Value: 1}}, held)
		<-done
		span.End()

		m := h.collect(t)
		waits := m["neuracraft.client.wait.duration"]
		require.Len(t, waits, 1)
		assert.Equal(t, []string{get, "neuracraft.wait.kind=cooldown", host}, waits[0].Attrs)
		assert.Equal(t, 1.0, waits[0].Value, "one cooldown wait")
		assert.True(t, waits[0].Sum >= 1 && waits[0].Sum < 1.05, "of one second and less than a gap: %v", waits[0].Sum)
		assert.Equal(t, []point{{Attrs: []string{"neuracraft.wait.kind=cooldown", host}, Value: 0}}, m["neuracraft.client.held"])
		assert.Equal(t, []point{{Attrs: []string{host}, Value: 20}}, m["neuracraft.client.pace"])
		events := h.spanEvents()
		require.Len(t, events, 2)
		assert.Equal(t, "neuracraft.retry error.type=429 http.request.resend_count=1 http.response.status_code=429 neuracraft.retry.delay=1",
			events[0])
		assert.Regexp(t, `^neuracraft\.cooldown neuracraft\.cooldown\.wait=1(\.0[0-4]\d*)? neuracraft\.wait\.kind=cooldown$`, events[1])
		assert.Equal(t, []string{fmt.Sprintf("neuracraft.wait.kind=cooldown %v Unset under caller", time.Duration(math.Round(waits[0].Sum*1e9)))},
			h.waitSpans(t))
	})
}

// TestPaceGauge: after a 429, the pace gauge reads the host's adaptive
// pace, 20 requests a second; 30 s after the 429, with no request since,
// it reads 0.
func TestPaceGauge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		tr := &neuracraft.Transport{Base: scripted(429, 200), Observer: h.obs}
		resp, err := tr.RoundTrip(newRequest(t, context.Background(), "https://api.neuracraft.com/v1/pipelines"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []point{{Attrs: []string{host}, Value: 20}}, h.collect(t)["neuracraft.client.pace"])
		time.Sleep(29 * time.Second) // 30 s and a part of a gap after the 429
		assert.Equal(t, []point{{Attrs: []string{host}, Value: 0}}, h.collect(t)["neuracraft.client.pace"])
	})
}

// pacingFleet is a Coordinator that paces every host at gap, as a fleet
// whose pace other members learnt: each request takes a turn, at once.
type pacingFleet struct {
	mu  sync.Mutex
	gap time.Duration
}

func (f *pacingFleet) Cooldown(string) (neuracraft.Cooldown, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return neuracraft.Cooldown{Gap: f.gap, Cause: 429, Epoch: 1}, f.gap > 0
}

func (f *pacingFleet) Announce(string, neuracraft.Pause) {}

func (f *pacingFleet) Reserve(context.Context, string, neuracraft.Hold) (neuracraft.Turn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return neuracraft.Turn{ID: 1, Epoch: 1, Gap: f.gap}, nil
}

func (f *pacingFleet) Cancel(string, neuracraft.Turn) {}

func (f *pacingFleet) setGap(gap time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gap = gap
}

// TestPaceGaugeFollowsTheFleet: with a Coordinator that paces the host,
// the pace gauge reads the fleet's pace, and follows it when it changes;
// once the fleet no longer paces the host, it reads 0.
func TestPaceGaugeFollowsTheFleet(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		fleet := &pacingFleet{gap: 40 * time.Millisecond}
		tr := &neuracraft.Transport{Base: scripted(200), Observer: h.obs, Coordinator: fleet}
		send := func() {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), "https://api.neuracraft.com/v1/pipelines"))
			require.NoError(t, err)
			resp.Body.Close()
		}
		for _, want := range []struct {
			gap  time.Duration
			pace float64
		}{{40 * time.Millisecond, 25}, {100 * time.Millisecond, 10}, {0, 0}} {
			fleet.setGap(want.gap)
			send()
			assert.Equal(t, []point{{Attrs: []string{host}, Value: want.pace}}, h.collect(t)["neuracraft.client.pace"],
				"the fleet's gap %v", want.gap)
		}
	})
}

// TestForgottenHostLeavesNoStaleGauge: a host whose breaker is open and
// that is paced, forgotten when a thousand other hosts fail after it,
// reads closed and not paced at once.
func TestForgottenHostLeavesNoStaleGauge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		tr := &neuracraft.Transport{Base: scripted(503, 503, 503, 503, 503, 429, 500), Observer: h.obs,
			Retry: neuracraft.RetryPolicy{MaxAttempts: 1}}
		send := func(host string) {
			_, err := tr.RoundTrip(newRequest(t, context.Background(), "https://"+host+"/v1/pipelines"))
			require.Error(t, err)
		}
		for range 6 { // five 503s open its breaker (and pace it), a 429 paces it again
			send("old.example")
		}
		time.Sleep(2 * time.Second) // its cooldown is over, and the first turn after it
		old := []string{"server.address=old.example"}
		m := h.collect(t)
		require.Equal(t, []point{{Attrs: old, Value: 1}}, m["neuracraft.client.breaker.open"])
		require.Len(t, m["neuracraft.client.pace"], 1)
		require.Positive(t, m["neuracraft.client.pace"][0].Value, "paced")

		for i := range 1024 { // 500s: the host table keeps 1024 hosts in trouble
			send(fmt.Sprintf("h%d.example", i))
		}
		m = h.collect(t)
		assert.Equal(t, []point{{Attrs: old, Value: 0}}, m["neuracraft.client.breaker.open"])
		assert.Equal(t, []point{{Attrs: old, Value: 0}}, m["neuracraft.client.pace"])
	})
}

// TestOutageOpensAndClosesTheBreaker: five 503s in a row spend the host's
// budget and open its breaker (the call, alone, stops for "budget"); the
// next answer closes it.
func TestOutageOpensAndClosesTheBreaker(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv, client := newServer(t, h, 5, neuracrafttest.Error(503, "service_unavailable", "Down"))
	server := serverAttrs(t, srv)

	_, err := fetch(t, context.Background(), client, srv, "/pipelines")
	require.ErrorIs(t, err, neuracraft.ErrUnavailable)
	m := h.collect(t)
	assert.Equal(t, []point{{Attrs: []string{server[0], server[1]}, Value: 1}}, m["neuracraft.client.breaker.open"], "open")
	assert.Equal(t, []point{{Attrs: []string{"error.type=503", get, "http.response.status_code=503",
		"neuracraft.stop.reason=budget", server[0], server[1]}, Value: 1}}, m["neuracraft.client.stops"])
	assert.Equal(t, 5.0, total(m["neuracraft.client.attempts"]))

	status, err := fetch(t, context.Background(), client, srv, "/pipelines")
	require.NoError(t, err)
	assert.Equal(t, 200, status)
	assert.Equal(t, []point{{Attrs: []string{server[0], server[1]}, Value: 0}}, h.collect(t)["neuracraft.client.breaker.open"], "closed")
}

// TestAttributesHoldNoURL: after calls that meet every path (retries,
// a cooldown, a stop, an open breaker) with a query, a path with an ID,
// and a request ID, no attribute of any metric or span event holds any of
// them.
func TestAttributesHoldNoURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv, client := newServer(t, h, 1, neuracrafttest.RateLimit("1"))
	srv.Fail("GET /pipelines/{id}", 1, neuracrafttest.Error(502, "bad_gateway", "Upstream"))
	srv.Fail("GET /runs/{run_id}", 6, neuracrafttest.Error(503, "service_unavailable", "Down"))
	ctx, span := h.tracer.Start(context.Background(), "caller")
	for _, path := range []string{"/pipelines?api_key=secret&limit=5", "/pipelines/pipe_secret?x=1", "/runs/run_secret"} {
		_, _ = fetch(t, ctx, client, srv, path)
	}
	span.End()
	assertNoSecrets(t, h)
}
