// Tests of Transport.Observer: the events of each kind, in order, with
// the request's context, never under a lock; and what a nil Observer
// costs.

package neuracraft

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is an Observer that keeps each event as a short line. With
// tr set, it checks on every event that no lock of tr is held (call it
// only from one call at a time then: another call may hold one).
type recorder struct {
	t   *testing.T
	tr  *Transport
	ctx context.Context // when set, the context every event must have

	mu     sync.Mutex
	events []string
}

func (r *recorder) Observe(ctx context.Context, e Event) {
	if r.ctx != nil && ctx != r.ctx {
		r.t.Errorf("%s: the context is not the request's", e.Kind)
	}
	forgotten := e.Kind == BreakerClosed || e.Kind == PaceChanged && e.Pace == 0 // may be a forgotten host's
	if e.Host == "" || e.Method == "" && !forgotten {
		r.t.Errorf("%s: no method or host: %+v", e.Kind, e)
	}
	if e.Kind == RetryStopped && !strings.Contains(e.Err.Error(), "not retried: ") {
		r.t.Errorf("%s: the error does not say why yet: %v", e.Kind, e.Err)
	}
	if r.tr != nil {
		checkUnlocked(r.t, r.tr, e)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventLine(e))
}

func (r *recorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// apiHost is the host of newReq's requests.
const apiHost = "api.neuracraft.com"

// eventLine is e in short: its kind and the fields that matter for it,
// and its host when it is not apiHost.
func eventLine(e Event) string {
	s := e.Kind.String()
	switch e.Kind {
	case AttemptStarted:
		s += fmt.Sprintf(" %d", e.Attempt)
	case AttemptEnded:
		s += fmt.Sprintf(" %d %d", e.Attempt, e.Status)
		if e.Err != nil && e.Status == 0 {
			s += fmt.Sprintf(" %T", e.Err)
		}
	case RetryDecided:
		s += fmt.Sprintf(" %d %d %v", e.Attempt, e.Status, e.Duration)
	case RetryStopped:
		s += fmt.Sprintf(" %d %d %s", e.Attempt, e.Status, e.Stop)
	case WaitStarted:
		s += fmt.Sprintf(" %s %v", e.Wait, e.Duration)
	case WaitEnded:
		s += fmt.Sprintf(" %s %v", e.Wait, e.Duration)
		if e.Err != nil {
			s += " " + e.Err.Error()
		}
	case PaceChanged:
		s += fmt.Sprintf(" %g %v", e.Pace, e.Duration)
	}
	if e.Host != apiHost {
		s += " @" + e.Host
	}
	return s
}

// checkUnlocked fails t when a lock of tr's host table or of the state of
// e's host is held: TryLock takes a free one at once.
func checkUnlocked(t *testing.T, tr *Transport, e Event) {
	h := tr.table()
	if h == nil {
		return
	}
	if !h.mu.TryLock() {
		t.Errorf("%s: the host table's lock is held", e.Kind)
		return
	}
	s := h.m[e.Host]
	h.mu.Unlock()
	if s == nil {
		return
	}
	if !s.mu.TryLock() {
		t.Errorf("%s: the host's lock is held", e.Kind)
		return
	}
	s.mu.Unlock()
}

// TestObserverEvents: the events of one call, for each path a call can
// take, in order, each with the request's context and with no lock held.
func TestObserverEvents(t *testing.T) {
	tests := []struct {
		name   string
		method string
		steps  []step
		policy RetryPolicy
		want   []string
	}{
		{
			name:  "a success",
			steps: []step{answer(200)},
			want:  []string{"attempt.started 1", "attempt.ended 1 200"},
		},
		{
			name:  "503 then 200: a backoff",
			steps: []step{answer(503), answer(200)},
			want: []string{
				"attempt.started 1", "attempt.ended 1 503",
				"retry.decided 1 503 250ms",
				"wait.started backoff 250ms", "wait.ended backoff 250ms",
				"attempt.started 2", "attempt.ended 2 200",
			},
		},
		{
			name:  "429 with Retry-After: 1: a cooldown holds the retry, and paces the host at 20 a second for 30 s",
			steps: []step{answer(429, "Retry-After", "1"), answer(200)},
			want: []string{
				"attempt.started 1", "attempt.ended 1 429",
				"pace.changed 20 30s",
				"retry.decided 1 429 1s",
				"wait.started cooldown 1.025s", "wait.ended cooldown 1.025s", // half a gap after the end: rand is half
				"attempt.started 2", "attempt.ended 2 200",
			},
		},
		{
			name:  "a network error, then 200",
			steps: []step{{err: errReset}, answer(200)},
			want: []string{
				"attempt.started 1", "attempt.ended 1 0 *neuracraft.RequestError",
				"retry.decided 1 0 250ms",
				"wait.started backoff 250ms", "wait.ended backoff 250ms",
				"attempt.started 2", "attempt.ended 2 200",
			},
		},
		{
			name:   "a POST that met a 500 stops: method",
			method: "POST",
			steps:  []step{answer(500)},
			want:   []string{"attempt.started 1", "attempt.ended 1 500", "retry.stopped 1 500 method"},
		},
		{
			name:   "attempts exhausted",
			steps:  []step{answer(503)},
			policy: RetryPolicy{MaxAttempts: 2},
			want: []string{
				"attempt.started 1", "attempt.ended 1 503", "retry.decided 1 503 250ms",
				"wait.started backoff 250ms", "wait.ended backoff 250ms",
				"attempt.started 2", "attempt.ended 2 503", "retry.stopped 2 503 attempts",
			},
		},
		{
			name:   "Retry-After beyond MaxRetryAfter stops at once",
			steps:  []step{answer(429, "Retry-After", "120")},
			policy: RetryPolicy{MaxRetryAfter: time.Minute},
			want:   []string{"attempt.started 1", "attempt.ended 1 429", "retry.stopped 1 429 retry_after"},
		},
		{
			name:  "a 404 is not retryable: no stop",
			steps: []step{answer(404)},
			want:  []string{"attempt.started 1", "attempt.ended 1 404"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				tr := &Transport{Base: &scriptBase{steps: tc.steps}, rand: half, Retry: tc.policy}
				rec := &recorder{t: t, tr: tr, ctx: ctx}
				tr.Observer = rec
				method := tc.method
				if method == "" {
					method = "GET"
				}
				resp, err := tr.RoundTrip(newReq(t, ctx, method, ""))
				if err == nil {
					resp.Body.Close()
				}
				assert.Equal(t, tc.want, rec.lines())
			})
		})
	}
}

// TestObserverBreaker: the failure that spends a host's budget opens its
// breaker (and a call alone stops for "budget"); the next answer closes
// it.
func TestObserverBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503), answer(503), answer(503), answer(503), answer(503), answer(200)}}
		tr := &Transport{Base: base, rand: zero, Retry: RetryPolicy{MaxAttempts: 10}}
		rec := &recorder{t: t, tr: tr}
		tr.Observer = rec
		require.Error(t, get(t, tr, context.Background())) // five 503s: the fifth opens the breaker, and the call is alone
		assert.Equal(t, []string{
			"attempt.ended 1 503", "attempt.ended 2 503", "attempt.ended 3 503", "attempt.ended 4 503",
			"attempt.ended 5 503", "breaker.opened", "retry.stopped 5 503 budget",
		}, kinds(rec.lines(), "attempt.ended", "breaker", "retry.stopped"))

		rec.events = nil
		require.NoError(t, get(t, tr, context.Background())) // 200: closes it
		assert.Equal(t, []string{"attempt.started 1", "attempt.ended 1 200", "breaker.closed"}, rec.lines())
	})
}

// TestObserverPace: a 429 paces its host at 20 requests a second for
// 30 s; two successes at that pace speed it up to 25 (the end stays 30 s
// after the 429); a call after the end, which lets the Transport forget
// the host, reports it no longer paced.
func TestObserverPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200)}}
		tr := &Transport{Base: base, rand: zero, Retry: RetryPolicy{MaxAttempts: 1}}
		rec := &recorder{t: t, tr: tr}
		tr.Observer = rec
		require.Error(t, get(t, tr, context.Background()))
		assert.Equal(t, []string{"attempt.started 1", "attempt.ended 1 429", "pace.changed 20 30s",
			"retry.stopped 1 429 attempts"}, rec.lines())

		rec.events = nil
		require.NoError(t, get(t, tr, context.Background())) // let go at 1 s, the end of the cooldown
		require.NoError(t, get(t, tr, context.Background())) // at 1.05 s: the second success at 50 ms
		assert.Equal(t, []string{
			"wait.started cooldown 1s", "wait.ended cooldown 1s", "attempt.started 1", "attempt.ended 1 200",
			"wait.started cooldown 50ms", "wait.ended cooldown 50ms",
			"attempt.started 1", "attempt.ended 1 200", "pace.changed 25 28.95s",
		}, kinds(rec.lines(), "attempt", "wait", "pace"))

		rec.events = nil
		time.Sleep(29 * time.Second) // 30.05 s: the pace ran out 50 ms ago
		require.NoError(t, get(t, tr, context.Background()))
		assert.Equal(t, []string{"attempt.started 1", "attempt.ended 1 200", "pace.changed 0 0s"}, rec.lines())
		assert.Zero(t, tr.table().len(), "the host is forgotten")
	})
}

// TestObserverQuotaPace: an answer that says few requests are left paces
// the host at what is left over the time to the reset, until then; one
// that says many are left ends that pace.
func TestObserverQuotaPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{
			answer(200, "X-RateLimit-Remaining", "2", "X-RateLimit-Reset", "10"),
			answer(200, "X-RateLimit-Remaining", "100", "X-RateLimit-Reset", "10"),
		}}
		tr := &Transport{Base: base}
		rec := &recorder{t: t, tr: tr}
		tr.Observer = rec
		require.NoError(t, get(t, tr, context.Background()))
		require.NoError(t, get(t, tr, context.Background()))
		assert.Equal(t, []string{
			"attempt.started 1", "attempt.ended 1 200", "pace.changed 0.2 10s", // 2 left in 10 s
			"attempt.started 1", "attempt.ended 1 200", "pace.changed 0 0s",
		}, rec.lines())
	})
}

// TestObserverForgottenHost: a host that the full table drops while its
// breaker is open and it is paced is reported closed and no longer paced,
// by the call that made room, with its context and no method.
func TestObserverForgottenHost(t *testing.T) {
	tr := &Transport{Base: &scriptBase{steps: []step{answer(503)}}, Retry: RetryPolicy{MaxAttempts: 1}}
	h := tr.tableForUpdate()
	now := time.Now()
	old := held(h.holdOrAddAt("old.example", now))
	old.failed(true)
	old.tokens = 0                                                               // its breaker is open,
	require.True(t, old.pushbackAt(now, ticket{}, 0).changed, "and it is paced") // as an Observer was told
	h.releaseAt(old, now)
	for i := range maxHosts - 1 {
		addFailing(h, fmt.Sprintf("h%d.example", i), now)
	}
	ctx := context.WithValue(context.Background(), whoKey{}, "maker of room")
	rec := &recorder{t: t, tr: tr, ctx: ctx}
	tr.Observer = rec
	require.Error(t, get(t, tr, ctx))
	assert.Equal(t, []string{
		"attempt.started 1", "attempt.ended 1 503",
		"breaker.closed @old.example", "pace.changed 0 0s @old.example",
		"retry.stopped 1 503 attempts",
	}, rec.lines())
	assert.Nil(t, h.lookup("old.example"))
}

// kinds returns the lines of events whose kind starts with one of
// prefixes.
func kinds(lines []string, prefixes ...string) []string {
	var out []string
	for _, l := range lines {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// TestObserverProbeWaits: two calls to a host whose breaker is open both
// fail; the first sends the probe 250 ms later (its own backoff), the
// second waits for it; both waits are of kind "probe", and the probe's
// answer closes the breaker.
func TestObserverProbeWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		answers := map[string][]int{"opener": {503, 503, 503, 503, 503}, "a": {503, 200}, "b": {503, 200}}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			who := req.Header.Get("X-Who")
			if who == "b" {
				<-release // b fails only once a holds the probe
			}
			mu.Lock()
			status := answers[who][0]
			answers[who] = answers[who][1:]
			mu.Unlock()
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		tr := &Transport{Base: base, rand: half, Retry: RetryPolicy{MaxAttempts: 10}}
		recs := map[string]*recorder{"a": {t: t}, "b": {t: t}, "opener": {t: t}}
		tr.Observer = observerFunc(func(ctx context.Context, e Event) { recs[ctx.Value(whoKey{}).(string)].Observe(ctx, e) })
		call := func(who string) error {
			ctx := context.WithValue(context.Background(), whoKey{}, who)
			recs[who].ctx = ctx
			req := newReq(t, ctx, "GET", "")
			req.Header.Set("X-Who", who)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		require.Error(t, call("opener"))
		var wg sync.WaitGroup
		errs := make(map[string]error)
		var emu sync.Mutex
		for _, who := range []string{"b", "a"} {
			wg.Go(func() {
				err := call(who)
				emu.Lock()
				errs[who] = err
				emu.Unlock()
			})
			synctest.Wait() // b is in its first attempt before a starts
		}
		close(release)
		wg.Wait()
		assert.NoError(t, errs["a"])
		assert.NoError(t, errs["b"])
		assert.Equal(t, []string{
			"attempt.started 1", "attempt.ended 1 503", "retry.decided 1 503 250ms",
			"wait.started probe 250ms", "wait.ended probe 250ms",
			"attempt.started 2", "attempt.ended 2 200", "breaker.closed",
		}, recs["a"].lines(), "a sends the probe")
		assert.Equal(t, []string{
			"attempt.started 1", "attempt.ended 1 503", "retry.decided 1 503 250ms",
			"wait.started probe 250ms", "wait.ended probe 250ms",
			"attempt.started 2", "attempt.ended 2 200",
		}, recs["b"].lines(), "b waits for it")
	})
}

type whoKey struct{}

// observerFunc is an Observer made of a function.
type observerFunc func(context.Context, Event)

func (f observerFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// TestObserverFleetWaits: with a Coordinator, a call that another
// process's cooldown catches waits its fleet turn, as a hold: one wait,
// also when a new cooldown in the fleet makes it ask for its turn again,
// and one that ends with the *CooldownError when that turn would come
// after its deadline.
func TestObserverFleetWaits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		again    time.Duration // another process's new cooldown, 500 ms in; 0: none
		deadline time.Duration // the call's; 0: none
		want     []string      // the events before the call's last: its attempt's, or the end of the wait it is refused in
	}{
		{"another process's cooldown", 0, 0, []string{"wait.started fleet 1s", "wait.ended fleet 1s"}},
		{"a new cooldown while it waits", 2 * time.Second, 0, []string{"wait.started fleet 1s", "wait.ended fleet 2.5s"}},
		{"a new cooldown past its deadline", 2 * time.Second, 2 * time.Second, []string{"wait.started fleet 1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				fleet := &fakeFleet{}
				fleet.Announce(apiHost, Pause{RetryAfter: time.Second, Gap: 10 * time.Millisecond, Cause: 429}) // from another process
				if tc.again > 0 {
					time.AfterFunc(500*time.Millisecond, func() {
						fleet.Announce(apiHost, Pause{RetryAfter: tc.again, Gap: 10 * time.Millisecond, Cause: 429})
					})
				}
				tr := &Transport{Base: &scriptBase{steps: []step{answer(200)}}, Coordinator: fleet}
				rec := &recorder{t: t, tr: tr, ctx: ctx}
				tr.Observer = rec
				resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
				want := tc.want
				if tc.deadline > 0 {
					var cdErr *CooldownError
					require.ErrorAs(t, err, &cdErr)
					want = append(want, "wait.ended fleet 1s "+cdErr.Error())
				} else {
					require.NoError(t, err)
					resp.Body.Close()
					want = append(want, "attempt.started 1", "attempt.ended 1 200")
				}
				assert.Equal(t, want, rec.lines())
			})
		})
	}
}

// TestObserverWaitCutShort: a call whose context ends while it is held
// ends its wait with the context's error: every wait started ends.
func TestObserverWaitCutShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr := &Transport{Base: &scriptBase{steps: []step{answer(503, "Retry-After", "5"), answer(200)}}, rand: half}
		rec := &recorder{t: t, tr: tr, ctx: ctx}
		tr.Observer = rec
		time.AfterFunc(2*time.Second, cancel)
		_, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, []string{
			"attempt.started 1", "attempt.ended 1 503", "pace.changed 20 30s", "retry.decided 1 503 5s",
			"wait.started cooldown 5.025s", "wait.ended cooldown 2s context canceled",
		}, rec.lines())
	})
}

// TestObserverRetryRefusedByItsTurn: a retry decided whose turn in the
// cooldown, once queued, would come after the context's deadline is not
// made: RetryStopped ("deadline") follows RetryDecided, without a wait,
// and the error holds both the last attempt's (which says why) and the
// *CooldownError. The same through a fleet's turn.
func TestObserverRetryRefusedByItsTurn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fleet bool
		want  []string
	}{
		{"local queue", false, []string{
			"attempt.started 1", "attempt.ended 1 429", "pace.changed 20 30s", "retry.decided 1 429 1s",
			"retry.stopped 1 429 deadline",
		}},
		{"fleet", true, []string{
			"attempt.started 1", "attempt.ended 1 429", "pace.changed 20 30s", "retry.decided 1 429 1s",
			"retry.stopped 1 429 deadline",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Retry-After: 1 fits the deadline; the turn, half a gap of
				// the pace after the cooldown (1.025 s), does not.
				ctx, cancel := context.WithTimeout(context.Background(), 1010*time.Millisecond)
				defer cancel()
				tr := &Transport{Base: &scriptBase{steps: []step{answer(429, "Retry-After", "1"), answer(200)}}, rand: half}
				if tc.fleet {
					tr.Coordinator = &fakeFleet{late: 25 * time.Millisecond} // the fleet's cooldown, as this member sees it, ends after the deadline
				}
				rec := &recorder{t: t, tr: tr, ctx: ctx}
				tr.Observer = rec
				_, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
				var cdErr *CooldownError
				require.ErrorAs(t, err, &cdErr)
				var apiErr *APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Contains(t, apiErr.Error(), "not retried: deadline too close")
				assert.Equal(t, tc.want, rec.lines())
			})
		})
	}
}

// TestObserverMayUseTheTransport: an Observer that sends a request
// through the same Transport, to the same host, from inside every event
// does not deadlock: it is called with no lock held. (The contract forbids
// it; this shows that nothing would hang.)
func TestObserverMayUseTheTransport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &scriptBase{steps: []step{answer(503), answer(429, "Retry-After", "1"), answer(200)}}
		tr := &Transport{Base: base, rand: half}
		nested := 0
		tr.Observer = observerFunc(func(ctx context.Context, e Event) {
			if ctx.Value(whoKey{}) != nil {
				return // the nested call's own events
			}
			nested++
			req := newReq(t, context.WithValue(ctx, whoKey{}, "nested"), "GET", "")
			req.Header.Set("X-Request-ID", "nested")
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
		})
		resp, err := tr.RoundTrip(newReq(t, context.Background(), "GET", ""))
		if err == nil {
			resp.Body.Close()
		}
		assert.Positive(t, nested)
	})
}

// TestNilObserverCostsNoAllocation: a success through a Transport without
// an Observer allocates nothing (with the caller's request ID), and one
// with an Observer that keeps nothing allocates nothing either.
func TestNilObserverCostsNoAllocation(t *testing.T) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return okResponse, nil })
	assert.Zero(t, successAllocs(t, &Transport{Base: base}))
	assert.Zero(t, successAllocs(t, &Transport{Base: base, Observer: observerFunc(func(context.Context, Event) {})}))
}

var okResponse = &http.Response{StatusCode: 200, Body: http.NoBody}

// BenchmarkObserver is the success path (the caller's request ID, a Base
// that answers at once) without an Observer and with one that does
// nothing; neuracraftotel's BenchmarkObserver has it with OpenTelemetry.
//
//	go test -run '^$' -bench Observer -benchmem -count 6 .
func BenchmarkObserver(b *testing.B) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return okResponse, nil })
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-Request-ID", "req_1")
	for _, bc := range []struct {
		name string
		obs  Observer
	}{{"nil", nil}, {"noop", observerFunc(func(context.Context, Event) {})}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &Transport{Base: base, Observer: bc.obs}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEventKindNames: each kind has its stable name; an unknown one has
// none.
func TestEventKindNames(t *testing.T) {
	var names []string
	for k := range EventKind(11) {
		names = append(names, k.String())
	}
	assert.Equal(t, []string{"", "attempt.started", "attempt.ended", "wait.started", "wait.ended",
		"retry.decided", "retry.stopped", "breaker.opened", "breaker.closed", "pace.changed", ""}, names)
}

// TestStopReasonNames: every reason a retryable failure can stop for has
// a short name; retrying and notRetryable have none.
func TestStopReasonNames(t *testing.T) {
	got := map[stopReason]StopReason{}
	for r := retrying; r <= stopDeadline; r++ {
		got[r] = r.name()
	}
	assert.Equal(t, map[stopReason]StopReason{retrying: "", notRetryable: "", stopMethod: "method", stopPolicy: "policy",
		stopContext: "context", stopRetryAfter: "retry_after", stopAttempts: "attempts", stopBody: "body",
		stopBudget: "budget", stopDeadline: "deadline"}, got)
}
