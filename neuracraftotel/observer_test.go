// Tests of the Observer driven by events built by hand: what each kind
// of event records, the span events, the attributes and the defaults.

package neuracraftotel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/neuracraft/neuracraft-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
)

// Failures as the Transport reports them.
var (
	err503 = &neuracraft.APIError{StatusCode: 503, Code: 503, Method: "GET",
		URL: "https://api.neuracraft.com/v1/pipelines/pipe_1?api_key=REDACTED", RequestID: "req_secret_1"}
	err429 = &neuracraft.APIError{StatusCode: 429, Code: 429, Method: "POST",
		URL: "https://api.neuracraft.com/v1/pipelines", RequestID: "req_secret_2", RetryAfter: time.Second}
	errReset = &neuracraft.RequestError{Method: "GET", URL: "https://api.neuracraft.com/v1/pipelines",
		RequestID: "req_secret_3", Attempts: 1, Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}
)

// drive sends events to o as one GET to api.neuracraft.com would.
func drive(ctx context.Context, o *Observer, events ...neuracraft.Event) {
	for _, e := range events {
		if e.Method == "" {
			e.Method = "GET"
		}
		if e.Host == "" {
			e.Host = "api.neuracraft.com"
		}
		o.Observe(ctx, e)
	}
}

// The attributes of a GET to api.neuracraft.com.
const (
	get  = "http.request.method=GET"
	host = "server.address=api.neuracraft.com"
)

// TestObserveKinds checks each kind of event on its own: what it records,
// with which attributes, and that kinds with nothing to record record
// nothing.
func TestObserveKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		events []neuracraft.Event
		want   map[string][]point
	}{
		{
			name: "a success is one attempt with its status",
			events: []neuracraft.Event{
				{Kind: neuracraft.AttemptStarted, Attempt: 1},
				{Kind: neuracraft.AttemptEnded, Attempt: 1, Status: 200, Duration: time.Millisecond},
			},
			want: map[string][]point{
				"neuracraft.client.attempts": {{Attrs: []string{get, "http.response.status_code=200", host}, Value: 1}},
			},
		},
		{
			name: "503 then 200: two attempts, one retry, one backoff wait",
			events: []neuracraft.Event{
				{Kind: neuracraft.AttemptStarted, Attempt: 1},
				{Kind: neuracraft.AttemptEnded, Attempt: 1, Status: 503, Err: err503, Duration: time.Millisecond},
				{Kind: neuracraft.RetryDecided, Attempt: 1, Status: 503, Err: err503, Duration: 200 * time.Millisecond},
				{Kind: neuracraft.WaitStarted, Wait: "backoff", Duration: 200 * time.Millisecond},
				{Kind: neuracraft.WaitEnded, Wait: "backoff", Duration: 250 * time.Millisecond},
				{Kind: neuracraft.AttemptStarted, Attempt: 2},
				{Kind: neuracraft.AttemptEnded, Attempt: 2, Status: 200, Duration: time.Millisecond},
			},
			want: map[string][]point{
				"neuracraft.client.attempts": {
					{Attrs: []string{"error.type=503", get, "http.response.status_code=503", host}, Value: 1},
					{Attrs: []string{get, "http.response.status_code=200", host}, Value: 1},
				},
				"neuracraft.client.retries":       {{Attrs: []string{"error.type=503", get, "http.response.status_code=503", host}, Value: 1}},
				"neuracraft.client.wait.duration": {{Attrs: []string{get, "neuracraft.wait.kind=backoff", host}, Value: 1, Sum: 0.25}},
			},
		},
		{
			name: "a network error has no status, and its cause's type",
			events: []neuracraft.Event{
				{Kind: neuracraft.AttemptEnded, Attempt: 1, Err: errReset},
				{Kind: neuracraft.RetryStopped, Attempt: 1, Err: errReset, Stop: "attempts"},
			},
			want: map[string][]point{
				"neuracraft.client.attempts": {{Attrs: []string{"error.type=*net.OpError", get, host}, Value: 1}},
				"neuracraft.client.stops":    {{Attrs: []string{"error.type=*net.OpError", get, "neuracraft.stop.reason=attempts", host}, Value: 1}},
			},
		},
		{
			name: "a stop is counted with its reason",
			events: []neuracraft.Event{
				{Kind: neuracraft.RetryStopped, Method: "POST", Attempt: 1, Status: 503, Err: err503, Stop: "method"},
				{Kind: neuracraft.RetryStopped, Attempt: 3, Status: 503, Err: err503, Stop: "budget"},
				{Kind: neuracraft.RetryStopped, Attempt: 4, Status: 503, Err: err503, Stop: "budget"},
			},
			want: map[string][]point{
				"neuracraft.client.stops": {
					{Attrs: []string{"error.type=503", "http.request.method=POST", "http.response.status_code=503", "neuracraft.stop.reason=method", host}, Value: 1},
					{Attrs: []string{"error.type=503", get, "http.response.status_code=503", "neuracraft.stop.reason=budget", host}, Value: 2},
				},
			},
		},
		{
			name: "a cooldown holds the request while it waits",
			events: []neuracraft.Event{
				{Kind: neuracraft.WaitStarted, Wait: "cooldown", Duration: time.Second},
				{Kind: neuracraft.WaitStarted, Host: "api.neuracraft.com:8443", Wait: "fleet", Duration: time.Second},
				{Kind: neuracraft.WaitEnded, Wait: "cooldown", Duration: time.Second},
			},
			want: map[string][]point{
				"neuracraft.client.held": {
					{Attrs: []string{"neuracraft.wait.kind=cooldown", host}, Value: 0},
					{Attrs: []string{"neuracraft.wait.kind=fleet", host, "server.port=8443"}, Value: 1},
				},
				"neuracraft.client.wait.duration": {{Attrs: []string{get, "neuracraft.wait.kind=cooldown", host}, Value: 1, Sum: 1}},
			},
		},
		{
			name: "backoff and probe waits hold nothing",
			events: []neuracraft.Event{
				{Kind: neuracraft.WaitStarted, Wait: "probe", Duration: time.Second},
				{Kind: neuracraft.WaitEnded, Wait: "probe", Duration: 500 * time.Millisecond, Err: context.Canceled},
			},
			want: map[string][]point{
				"neuracraft.client.wait.duration": {{Attrs: []string{get, "neuracraft.wait.kind=probe", host}, Value: 1, Sum: 0.5}},
			},
		},
		{
			name: "breakers open and close per host",
			events: []neuracraft.Event{
				{Kind: neuracraft.BreakerOpened},
				{Kind: neuracraft.BreakerOpened, Host: "other.example"},
				{Kind: neuracraft.BreakerClosed},
			},
			want: map[string][]point{
				"neuracraft.client.breaker.open": {
					{Attrs: []string{host}, Value: 0},
					{Attrs: []string{"server.address=other.example"}, Value: 1},
				},
			},
		},
		{
			name: "the pace is the last one told, while it lasts; 0 once it ended",
			events: []neuracraft.Event{
				{Kind: neuracraft.PaceChanged, Pace: 20, Duration: 30 * time.Second},
				{Kind: neuracraft.PaceChanged, Pace: 25, Duration: 29 * time.Second},
				{Kind: neuracraft.PaceChanged, Host: "ended.example", Pace: 20, Duration: 30 * time.Second},
				{Kind: neuracraft.PaceChanged, Host: "ended.example"},
				{Kind: neuracraft.PaceChanged, Host: "ran-out.example", Pace: 5}, // lasts no time
			},
			want: map[string][]point{
				"neuracraft.client.pace": {
					{Attrs: []string{host}, Value: 25},
					{Attrs: []string{"server.address=ended.example"}, Value: 0},
					{Attrs: []string{"server.address=ran-out.example"}, Value: 0},
				},
			},
		},
		{
			name:   "unknown and attempt-started events record nothing",
			events: []neuracraft.Event{{Kind: neuracraft.AttemptStarted, Attempt: 1}, {Kind: 200}},
			want:   map[string][]point{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			drive(context.Background(), h.obs, tc.events...)
			if diff := cmp.Diff(tc.want, h.collect(t), bySortedText); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

// bySortedText orders points for cmp when their order does not matter.
var bySortedText = cmpopts.SortSlices(func(a, b point) bool { return fmt.Sprint(a) < fmt.Sprint(b) })

// TestSpanEvents: a retry and a hold add their events to the recording
// span of the request's context, with their attributes; other events
// add none, and a context without a recording span gets none.
func TestSpanEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, span := h.tracer.Start(context.Background(), "caller")
	drive(ctx, h.obs,
		neuracraft.Event{Kind: neuracraft.AttemptEnded, Attempt: 1, Status: 503, Err: err503},
		neuracraft.Event{Kind: neuracraft.RetryDecided, Attempt: 1, Status: 503, Err: err503, Duration: 1500 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.WaitStarted, Wait: "backoff", Duration: 1500 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "backoff", Duration: 1500 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.RetryDecided, Method: "POST", Attempt: 2, Status: 429, Err: err429, Duration: time.Second},
		neuracraft.Event{Kind: neuracraft.WaitStarted, Wait: "cooldown", Duration: time.Second},
		neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "cooldown", Duration: time.Second},
		neuracraft.Event{Kind: neuracraft.RetryDecided, Attempt: 3, Err: errReset, Duration: 250 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.WaitStarted, Wait: "fleet", Duration: 20 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.RetryStopped, Attempt: 4, Err: errReset, Stop: "attempts"},
		neuracraft.Event{Kind: neuracraft.BreakerOpened},
	)
	span.End()
	// Events on a context without a span, or with one that does not record.
	drive(context.Background(), h.obs, neuracraft.Event{Kind: neuracraft.RetryDecided, Attempt: 1, Status: 503, Err: err503})
	quiet := &quietSpan{Span: trace.SpanFromContext(context.Background())}
	drive(trace.ContextWithSpan(context.Background(), quiet), h.obs,
		neuracraft.Event{Kind: neuracraft.RetryDecided, Attempt: 1, Status: 503, Err: err503},
		neuracraft.Event{Kind: neuracraft.WaitStarted, Wait: "cooldown"})
	assert.Zero(t, quiet.events, "events added to a span that does not record")

	want := []string{
		"neuracraft.retry error.type=503 http.request.resend_count=1 http.response.status_code=503 neuracraft.retry.delay=1.5",
		"neuracraft.retry error.type=429 http.request.resend_count=2 http.response.status_code=429 neuracraft.retry.delay=1",
		"neuracraft.cooldown neuracraft.cooldown.wait=1 neuracraft.wait.kind=cooldown",
		"neuracraft.retry error.type=*net.OpError http.request.resend_count=3 neuracraft.retry.delay=0.25",
		"neuracraft.cooldown neuracraft.cooldown.wait=0.02 neuracraft.wait.kind=fleet",
	}
	assert.Equal(t, want, h.spanEvents())
}

// TestWaitSpans: each wait that ends is a span from its start to its
// end, a child of the span in the request's context, with its kind, and
// an error status with error.type when the context cut it short; a
// request whose context holds no span, or a parent that is not sampled,
// records none.
func TestWaitSpans(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, span := h.tracer.Start(context.Background(), "caller")
	drive(ctx, h.obs,
		neuracraft.Event{Kind: neuracraft.WaitStarted, Wait: "backoff", Duration: 250 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "backoff", Duration: 250 * time.Millisecond},
		neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "cooldown", Duration: time.Second, Err: context.Canceled},
		neuracraft.Event{Kind: neuracraft.AttemptEnded, Attempt: 1, Status: 503, Err: err503, Duration: time.Second})
	span.End()
	drive(context.Background(), h.obs, neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "backoff", Duration: time.Second})
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true}))
	drive(unsampled, h.obs, neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "backoff", Duration: time.Second})

	assert.Equal(t, []string{
		"neuracraft.wait.kind=backoff 250ms Unset under caller",
		"error.type=canceled neuracraft.wait.kind=cooldown 1s Error under caller",
	}, h.waitSpans(t))
	assert.Len(t, h.spans.Ended(), 3, "the caller's span and two waits")
}

// quietSpan is a span that does not record, and counts the events it is
// given anyway.
type quietSpan struct {
	trace.Span
	events int
}

func (s *quietSpan) IsRecording() bool                     { return false }
func (s *quietSpan) AddEvent(string, ...trace.EventOption) { s.events++ }

// TestNoURLOrRequestIDInAttributes: whatever the events carry (a URL with
// a query in the error, a request ID, a path in the host by mistake),
// the attributes hold only the host, the method and the bounded values.
func TestNoURLOrRequestIDInAttributes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, span := h.tracer.Start(context.Background(), "caller")
	for _, kind := range []neuracraft.EventKind{neuracraft.AttemptStarted, neuracraft.AttemptEnded,
		neuracraft.RetryDecided, neuracraft.RetryStopped, neuracraft.WaitStarted, neuracraft.WaitEnded,
		neuracraft.BreakerOpened, neuracraft.BreakerClosed, neuracraft.PaceChanged} {
		for _, err := range []error{err503, err429, errReset} {
			drive(ctx, h.obs, neuracraft.Event{Kind: kind, Method: "PROPFIND-req_secret", Attempt: 1,
				Status: 503, Err: err, Wait: "cooldown", Stop: "budget", Duration: time.Second, Pace: 10})
		}
	}
	span.End()
	assertNoSecrets(t, h)
}

// assertNoSecrets fails when an attribute of a metric or span event of h
// holds a URL, a path, a query or a request ID.
func assertNoSecrets(t *testing.T, h *harness) {
	t.Helper()
	var seen []string
	for name, pts := range h.collect(t) {
		for _, p := range pts {
			for _, a := range p.Attrs {
				seen = append(seen, name+": "+a)
			}
		}
	}
	seen = append(seen, h.spanEvents()...)
	for _, s := range h.spans.Ended() {
		seen = append(seen, s.Name())
		seen = append(seen, attrStrings(attribute.NewSet(s.Attributes()...))...)
	}
	require.NotEmpty(t, seen)
	for _, s := range seen {
		for _, bad := range []string{"http:", "https:", "/v1", "pipe_", "?", "api_key", "req_", "REDACTED"} {
			assert.NotContains(t, s, bad)
		}
	}
}

// TestAttributes: methods outside the HTTP conventions' list are "_OTHER";
// the host is split from its port; error.type is the status, or the
// cause's type, or "timeout" and "canceled".
func TestAttributes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"GET", "GET"}, {"", "GET"}, {"PATCH", "PATCH"}, {"QUERY", "QUERY"},
		{"get", "_OTHER"}, {"PROPFIND", "_OTHER"}, {"GET /v1/x?api_key=1", "_OTHER"},
	} {
		assert.Equal(t, tc.want, method(tc.in), "method(%q)", tc.in)
	}
	for _, tc := range []struct {
		in   string
		host string
		port int
	}{
		{"api.neuracraft.com", "api.neuracraft.com", 0},
		{"api.neuracraft.com:8443", "api.neuracraft.com", 8443},
		{"127.0.0.1:80", "127.0.0.1", 80},
		{"[::1]:8080", "::1", 8080},
		{"[::1]", "::1", 0},
		{"host:", "host", 0},
		{"host:99999", "host", 0},
		{"host:x", "host", 0},
	} {
		host, port := splitHostPort(tc.in)
		assert.Equal(t, tc.host, host, "splitHostPort(%q)", tc.in)
		assert.Equal(t, tc.port, port, "splitHostPort(%q)", tc.in)
	}
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{err503, "503"},
		{fmt.Errorf("wrapped: %w", err429), "429"},
		{errReset, "*net.OpError"},
		{&neuracraft.RequestError{Err: timeout}, "timeout"},
		{&neuracraft.RequestError{Err: context.DeadlineExceeded}, "timeout"},
		{fmt.Errorf("%w; retry abandoned: %w", err503, context.Canceled), "503"},
		{&neuracraft.RequestError{Err: context.Canceled}, "canceled"},
		{&neuracraft.RequestError{Err: fmt.Errorf("dial: %w", &net.DNSError{Err: "no such host", Name: "x"})}, "*net.DNSError"},
		{&neuracraft.RequestError{}, "*neuracraft.RequestError"},
	} {
		assert.Equal(t, tc.want, errorType(tc.err), "errorType(%v)", tc.err)
	}
}

// TestDefaultsAreTheGlobals: New with no providers, and the zero
// Observer, record on the global MeterProvider.
func TestDefaultsAreTheGlobals(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(mp)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	ended := neuracraft.Event{Kind: neuracraft.AttemptEnded, Attempt: 1, Status: 200}
	drive(context.Background(), New(Options{}), ended)
	drive(context.Background(), &Observer{}, ended)
	h := &harness{reader: reader}
	got := h.collect(t)
	assert.Equal(t, []point{{Attrs: []string{get, "http.response.status_code=200", host}, Value: 2}}, got["neuracraft.client.attempts"])
}

// TestInstruments: the instruments have the names, units and kinds the
// package documents.
func TestInstruments(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	drive(context.Background(), h.obs,
		neuracraft.Event{Kind: neuracraft.AttemptEnded, Status: 200},
		neuracraft.Event{Kind: neuracraft.RetryDecided, Status: 503, Err: err503},
		neuracraft.Event{Kind: neuracraft.RetryStopped, Status: 503, Err: err503, Stop: "budget"},
		neuracraft.Event{Kind: neuracraft.WaitStarted, Wait: "cooldown"},
		neuracraft.Event{Kind: neuracraft.WaitEnded, Wait: "cooldown"},
		neuracraft.Event{Kind: neuracraft.BreakerOpened},
		neuracraft.Event{Kind: neuracraft.PaceChanged, Pace: 20, Duration: time.Minute})
	var rm metricdata.ResourceMetrics
	require.NoError(t, h.reader.Collect(context.Background(), &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	got := map[string]string{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		kind := fmt.Sprintf("%T", m.Data)
		if s, ok := m.Data.(metricdata.Sum[int64]); ok {
			kind = fmt.Sprintf("sum monotonic=%v", s.IsMonotonic)
		}
		got[m.Name] = m.Unit + " " + kind
	}
	assert.Equal(t, map[string]string{
		"neuracraft.client.attempts":      "{attempt} sum monotonic=true",
		"neuracraft.client.retries":       "{retry} sum monotonic=true",
		"neuracraft.client.stops":         "{call} sum monotonic=true",
		"neuracraft.client.wait.duration": "s metricdata.Histogram[float64]",
		"neuracraft.client.breaker.open":  "{host} sum monotonic=false",
		"neuracraft.client.held":          "{request} sum monotonic=false",
		"neuracraft.client.pace":          "{request}/s metricdata.Gauge[float64]",
	}, got)
}

// TestPaceRunsOut: a pace reads as told while it lasts, and 0 once it has
// run out, with no event in between.
func TestPaceRunsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		drive(context.Background(), h.obs, neuracraft.Event{Kind: neuracraft.PaceChanged, Pace: 20, Duration: 30 * time.Second})
		time.Sleep(30*time.Second - time.Nanosecond)
		assert.Equal(t, []point{{Attrs: []string{host}, Value: 20}}, h.collect(t)["neuracraft.client.pace"])
		time.Sleep(time.Nanosecond)
		assert.Equal(t, []point{{Attrs: []string{host}, Value: 0}}, h.collect(t)["neuracraft.client.pace"])
	})
}

// TestPacedHostsBound: the Observer keeps the pace of at most
// maxPacedHosts hosts: past it, the hosts whose pace ended go first, then
// the one whose pace ends first; a host still paced keeps its pace.
func TestPacedHostsBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var p pacedHosts
		now := time.Now()
		p.set("ended.example", 0, now)
		p.set("ran-out.example", 5, now)
		p.set("soonest.example", 5, now.Add(time.Second))
		for i := range maxPacedHosts - 3 {
			p.set(fmt.Sprintf("h%d.example", i), 20, now.Add(time.Minute))
		}
		require.Len(t, p.m, maxPacedHosts)
		p.set("h0.example", 25, now.Add(time.Minute)) // known: nothing goes
		require.Len(t, p.m, maxPacedHosts)

		p.set("new.example", 10, now.Add(time.Minute))
		assert.Len(t, p.m, maxPacedHosts-1, "the two hosts no longer paced went")
		assert.NotContains(t, p.m, "ended.example")
		assert.NotContains(t, p.m, "ran-out.example")
		p.set("newer.example", 10, now.Add(time.Minute))
		p.set("newest.example", 10, now.Add(time.Minute))
		assert.Len(t, p.m, maxPacedHosts)
		assert.NotContains(t, p.m, "soonest.example", "then the one whose pace ends first")
		assert.Equal(t, 25.0, p.m["h0.example"].pace)
		assert.Contains(t, p.m, "newest.example")

		// Full of paced hosts: the end of the pace of a host not kept
		// (the Transport forgot it) makes no room, and is not kept.
		p.set("gone.example", 0, now)
		assert.Len(t, p.m, maxPacedHosts)
		assert.NotContains(t, p.m, "gone.example")
		paced := 0
		for _, h := range p.m {
			if h.pace > 0 {
				paced++
			}
		}
		assert.Equal(t, maxPacedHosts, paced, "no paced host made room for it")
	})
}

// TestAnswerSetsMatchOutcome: the set kept for an attempt answered from
// 100 to 399 without error is the one its attributes make; other attempts
// get no kept set.
func TestAnswerSetsMatchOutcome(t *testing.T) {
	tests := []struct {
		name string
		e    neuracraft.Event
		kept bool
	}{
		{"GET 200", neuracraft.Event{Method: "GET", Host: "api.neuracraft.com", Status: 200}, true},
		{"empty method", neuracraft.Event{Host: "api.neuracraft.com", Status: 200}, true},
		{"invented method", neuracraft.Event{Method: "BREW", Host: "api.neuracraft.com", Status: 204}, true},
		{"port", neuracraft.Event{Method: "POST", Host: "api.neuracraft.com:8443", Status: 201}, true},
		{"IPv6", neuracraft.Event{Method: "PUT", Host: "[::1]:9000", Status: 100}, true},
		{"399", neuracraft.Event{Method: "GET", Host: "a.example", Status: 399}, true},
		{"400", neuracraft.Event{Method: "GET", Host: "a.example", Status: 400}, false},
		{"503 with error", neuracraft.Event{Method: "GET", Host: "a.example", Status: 503, Err: err503}, false},
		{"200 with error", neuracraft.Event{Method: "GET", Host: "a.example", Status: 200, Err: errReset}, false},
		{"no answer", neuracraft.Event{Method: "GET", Host: "a.example", Err: errReset}, false},
		{"status 99", neuracraft.Event{Method: "GET", Host: "a.example", Status: 99}, false},
		{"status 999", neuracraft.Event{Method: "GET", Host: "a.example", Status: 999}, false},
		{"negative status", neuracraft.Event{Method: "GET", Host: "a.example", Status: -200}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a answerSets
			for range 2 { // built, then kept
				s, ok := a.get(tt.e)
				require.Equal(t, tt.kept, ok)
				if ok {
					want := attribute.NewSet(outcome(tt.e)...)
					assert.Equal(t, attrStrings(want), attrStrings(s.set))
					assert.True(t, want.Equals(&s.set))
				}
			}
		})
	}
}

// TestCachedAndUncachedRecordTheSame: an Observer whose kept sets are all
// taken by other hosts builds the attributes of every attempt, and
// records exactly what one that uses its kept sets records.
func TestCachedAndUncachedRecordTheSame(t *testing.T) {
	cached, uncached := newHarness(t), newHarness(t)
	for i := range maxAnswerSets {
		_, ok := uncached.obs.answered.get(neuracraft.Event{Host: fmt.Sprintf("filler%d.example", i), Status: 200})
		require.True(t, ok)
	}
	events := []neuracraft.Event{
		{Kind: neuracraft.AttemptEnded, Status: 200},
		{Kind: neuracraft.AttemptEnded, Status: 200},
		{Kind: neuracraft.AttemptEnded, Method: "POST", Host: "api.neuracraft.com:8443", Status: 201},
		{Kind: neuracraft.AttemptEnded, Method: "BREW", Status: 304},
		{Kind: neuracraft.AttemptEnded, Host: "[::1]:9000", Status: 204},
		{Kind: neuracraft.AttemptEnded, Status: 503, Err: err503},
		{Kind: neuracraft.AttemptEnded, Err: errReset},
		{Kind: neuracraft.AttemptEnded, Status: 999},
	}
	drive(context.Background(), cached.obs, events...)
	drive(context.Background(), uncached.obs, events...)
	assert.Len(t, cached.obs.answered.m, 4, "the answers below 400 are kept")
	assert.Len(t, uncached.obs.answered.m, maxAnswerSets, "none could be kept")
	got, want := cached.collect(t), uncached.collect(t)
	require.NotEmpty(t, want["neuracraft.client.attempts"])
	assert.Empty(t, cmp.Diff(want, got))
}

// TestAnswerSetsBound: thousands of hosts and methods, and a server that
// answers with statuses nobody uses, keep at most maxAnswerSets sets;
// past the bound a new attempt gets none, and a kept one still gets its.
func TestAnswerSetsBound(t *testing.T) {
	var a answerSets
	for i := range 5000 {
		a.get(neuracraft.Event{Method: fmt.Sprintf("M%d", i), Host: "a.example", Status: 200}) // all _OTHER
		a.get(neuracraft.Event{Method: "GET", Host: "odd.example", Status: 1000 + i})
	}
	require.Len(t, a.m, 1, "invented methods share _OTHER; statuses past 399 are not kept")
	for i := range 5000 {
		a.get(neuracraft.Event{Method: "GET", Host: fmt.Sprintf("h%d.example", i), Status: 100 + i%300})
	}
	require.Len(t, a.m, maxAnswerSets)
	_, ok := a.get(neuracraft.Event{Method: "GET", Host: "new.example", Status: 200})
	assert.False(t, ok, "no room: the caller builds the attributes")
	s, ok := a.get(neuracraft.Event{Method: "GET", Host: "h0.example", Status: 100})
	require.True(t, ok, "a kept set is still used")
	assert.Contains(t, attrStrings(s.set), "server.address=h0.example")
	assert.Len(t, a.m, maxAnswerSets)
}

// TestAnswerSetsConcurrent: attempts observed from many goroutines at
// once, on more hosts than are kept, are all counted (run with -race).
func TestAnswerSetsConcurrent(t *testing.T) {
	h := newHarness(t)
	const workers, each = 8, 300
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				drive(context.Background(), h.obs, neuracraft.Event{Kind: neuracraft.AttemptEnded,
					Host: fmt.Sprintf("h%d.example", (w*each+i)%(2*maxAnswerSets)), Status: 200})
			}
		})
	}
	wg.Wait()
	assert.Len(t, h.obs.answered.m, maxAnswerSets)
	assert.Equal(t, float64(workers*each), total(h.collect(t)["neuracraft.client.attempts"]))
}

// TestAnsweredAttemptAllocatesNothing: once its set is kept, recording an
// attempt answered below 400 allocates nothing; one that failed still
// builds its attributes.
func TestAnsweredAttemptAllocatesNothing(t *testing.T) {
	h := newHarness(t)
	ok := neuracraft.Event{Kind: neuracraft.AttemptEnded, Method: "GET", Host: "api.neuracraft.com", Status: 200}
	h.obs.Observe(context.Background(), ok)
	assert.Zero(t, testing.AllocsPerRun(100, func() { h.obs.Observe(context.Background(), ok) }))
	failed := neuracraft.Event{Kind: neuracraft.AttemptEnded, Method: "GET", Host: "api.neuracraft.com", Status: 503, Err: err503}
	assert.NotZero(t, testing.AllocsPerRun(100, func() { h.obs.Observe(context.Background(), failed) }))
}
