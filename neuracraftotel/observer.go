// Package neuracraftotel records what a [neuracraft.Transport] does, its
// attempts, retries, waits, stops, breakers and pace, as OpenTelemetry
// metrics, adds its retries and cooldowns as events to the span of each
// request, and traces each wait before an attempt as a span of its own.
//
// Build an [Observer] with [New] and set it as the Transport's Observer:
//
//	t := &neuracraft.Transport{Observer: neuracraftotel.New(neuracraftotel.Options{})}
//
// # Metrics
//
// The meter is named "github.com/neuracraft/neuracraft-go/neuracraftotel".
// Attributes follow OpenTelemetry's HTTP semantic conventions:
// http.request.method (the known methods, else "_OTHER"), server.address
// and server.port (the URL's host and port, when it names one),
// http.response.status_code and error.type (the status of an answer such
// as "503", else the type of the network error, such as "*net.OpError").
//
//	neuracraft.client.attempts       counter     {attempt}  every attempt sent: method, server, status, error.type when it failed
//	neuracraft.client.retries        counter     {retry}    every retry decided: method, server, the failure's status and error.type
//	neuracraft.client.stops          counter     {call}     retryable failures not retried: the same, and neuracraft.stop.reason
//	neuracraft.client.wait.duration  histogram   s          every wait before an attempt: method, server, neuracraft.wait.kind
//	neuracraft.client.breaker.open   up-down     {host}     hosts whose breaker is open: server
//	neuracraft.client.held           up-down     {request}  requests held by a cooldown right now: server, neuracraft.wait.kind
//	neuracraft.client.pace           gauge       {request}/s  a host's release pace while it is paced, 0 after: server
//
// neuracraft.wait.kind is "backoff", "cooldown", "probe" or "fleet";
// neuracraft.stop.reason is "method", "policy", "context", "retry_after",
// "attempts", "body", "budget" or "deadline" (see [neuracraft.WaitKind]
// and [neuracraft.StopReason]). No attribute holds a URL, path, query or
// request ID, so the number of series is bounded by the methods, the
// hosts met and these values.
//
// A host's breaker.open goes back down when its breaker closes, and when
// the Transport forgets the host; held when the wait ends, however it
// ends. The pace is an asynchronous gauge, read when the metrics are
// collected: a host's pace reads 0 once it has run out, whether or not a
// request came since (the Transport tells how long each pace lasts), or
// once the Transport forgot the host. With a Coordinator that paces the
// host, it is the fleet's pace, which the requests go at (see
// [neuracraft.PaceChanged]). The Observer keeps the pace of at most 4096
// hosts for it, the paced ones first; a host left out reads nothing
// rather than a stale pace. (The OpenTelemetry SDK's own limit comes
// first: by default it keeps 2000 series of a metric, and folds the rest
// into one marked otel.metric.overflow; raise it with
// sdkmetric.WithCardinalityLimit when more hosts may be paced at once.)
//
// To record an attempt answered without error (status 100 to 399) without
// allocating, the Observer keeps the attribute set of each method, host and
// status met, at most 1024 of them, the first met: the attempts of the
// others build their attributes on each attempt, as failed ones do, and
// record the same.
//
// # Traces
//
// When the request's context holds a recording span, the Observer adds
// to it an event "neuracraft.retry" for every retry
// (http.request.resend_count, neuracraft.retry.delay in seconds,
// error.type and http.response.status_code) and "neuracraft.cooldown"
// whenever the call is held (neuracraft.wait.kind, and
// neuracraft.cooldown.wait, the expected wait in seconds).
//
// Each wait before an attempt is also a span, "neuracraft.wait", from the
// start of the wait to its end, with neuracraft.wait.kind (and error.type
// and an error status when the context cut it short): a child of the span
// in the request's context, started on [Options.TracerProvider]. A
// request whose context holds no span starts none, so a call that nobody
// traces makes no trace.
//
// Where otelhttp goes: with its transport outside the neuracraft.Transport,
// its span, one per call, gets the events and has the waits as children;
// with its transport as the Transport's Base, each attempt gets a span of
// its own (as the HTTP conventions ask for resends), and the events and
// the wait spans go on the caller's span around them, so that the waits
// sit between the attempts.
package neuracraftotel

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// scope is the name of the Observer's meter and tracer.
const scope = "github.com/neuracraft/neuracraft-go/neuracraftotel"

// Attribute keys of this package's own.
const (
	waitKindKey     = attribute.Key("neuracraft.wait.kind")
	stopReasonKey   = attribute.Key("neuracraft.stop.reason")
	retryDelayKey   = attribute.Key("neuracraft.retry.delay")
	cooldownWaitKey = attribute.Key("neuracraft.cooldown.wait")
)

// waitBuckets are the bounds of the wait histogram, in seconds: from a
// release gap (10 ms) to the longest Retry-After honoured by default
// (60 s).
var waitBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Options configures [New]. The zero value uses OpenTelemetry's global
// providers.
type Options struct {
	// MeterProvider provides the meter of the metrics. nil means
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// TracerProvider provides the tracer of the spans the Observer
	// starts: one "neuracraft.wait" per wait before an attempt, a child of
	// the span in the request's context (none when the context holds no
	// span). nil means otel.GetTracerProvider(). The span events go on the
	// request's span, whichever provider started it.
	TracerProvider trace.TracerProvider
}

// Observer records the events of a [neuracraft.Transport] as metrics,
// span events and spans; it implements [neuracraft.Observer]. Build one
// with [New]; the zero Observer uses the global providers. An Observer is
// safe for concurrent use, and one may serve several Transports.
type Observer struct {
	once     sync.Once
	attempts metric.Int64Counter
	retries  metric.Int64Counter
	stops    metric.Int64Counter
	waits    metric.Float64Histogram
	breakers metric.Int64UpDownCounter
	held     metric.Int64UpDownCounter
	paced    pacedHosts // read by the pace gauge's callback
	answered answerSets // the attributes of successful attempts
	tracer   trace.Tracer
}

var _ neuracraft.Observer = (*Observer)(nil)

// New returns an Observer that records on the providers of opts. An
// instrument the meter cannot create is reported to otel.Handle, and
// records nothing. The pace gauge's callback stays registered with the
// meter as long as its MeterProvider lives.
func New(opts Options) *Observer {
	o := &Observer{}
	o.once.Do(func() { o.init(opts) })
	return o
}

// init creates the instruments.
func (o *Observer) init(opts Options) {
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	o.tracer = tp.Tracer(scope)
	m := mp.Meter(scope)
	var errs [7]error
	o.attempts, errs[0] = m.Int64Counter("neuracraft.client.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts sent, with their outcome."))
	o.retries, errs[1] = m.Int64Counter("neuracraft.client.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Retries decided, with the failure that caused them."))
	o.stops, errs[2] = m.Int64Counter("neuracraft.client.stops", metric.WithUnit("{call}"),
		metric.WithDescription("Retryable failures not retried, with the reason."))
	o.waits, errs[3] = m.Float64Histogram("neuracraft.client.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Waits before an attempt, by kind."), metric.WithExplicitBucketBoundaries(waitBuckets...))
	o.breakers, errs[4] = m.Int64UpDownCounter("neuracraft.client.breaker.open", metric.WithUnit("{host}"),
		metric.WithDescription("Hosts whose circuit breaker is open."))
	o.held, errs[5] = m.Int64UpDownCounter("neuracraft.client.held", metric.WithUnit("{request}"),
		metric.WithDescription("Requests held by a cooldown."))
	_, errs[6] = m.Float64ObservableGauge("neuracraft.client.pace", metric.WithUnit("{request}/s"),
		metric.WithDescription("The most requests a second let go to a paced host; 0 once it is no longer paced."),
		metric.WithFloat64Callback(o.paced.observe))
	if err := errors.Join(errs[:]...); err != nil {
		otel.Handle(err)
	}
}

// Observe records e; see [neuracraft.Observer].
func (o *Observer) Observe(ctx context.Context, e neuracraft.Event) {
	o.once.Do(func() { o.init(Options{}) })
	switch e.Kind {
	case neuracraft.AttemptEnded:
		if a, ok := o.answered.get(e); ok {
			o.attempts.Add(ctx, 1, a.opts...)
		} else {
			o.attempts.Add(ctx, 1, metric.WithAttributes(outcome(e)...))
		}
	case neuracraft.RetryDecided:
		attrs := outcome(e)
		o.retries.Add(ctx, 1, metric.WithAttributes(attrs...))
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("neuracraft.retry", trace.WithAttributes(
				semconv.HTTPRequestResendCountKey.Int(e.Attempt),
				retryDelayKey.Float64(e.Duration.Seconds()),
				semconv.ErrorTypeKey.String(errorType(e.Err))),
				trace.WithAttributes(statusAttr(e)...))
		}
	case neuracraft.RetryStopped:
		o.stops.Add(ctx, 1, metric.WithAttributes(append(outcome(e), stopReasonKey.String(string(e.Stop)))...))
	case neuracraft.WaitStarted:
		if held(e.Wait) {
			o.held.Add(ctx, 1, metric.WithAttributes(append(server(e.Host), waitKindKey.String(string(e.Wait)))...))
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.AddEvent("neuracraft.cooldown", trace.WithAttributes(
					waitKindKey.String(string(e.Wait)),
					cooldownWaitKey.Float64(e.Duration.Seconds())))
			}
		}
	case neuracraft.WaitEnded:
		o.waits.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(
			append(request(e), waitKindKey.String(string(e.Wait)))...))
		if held(e.Wait) {
			o.held.Add(ctx, -1, metric.WithAttributes(append(server(e.Host), waitKindKey.String(string(e.Wait)))...))
		}
		o.waitSpan(ctx, e)
	case neuracraft.BreakerOpened:
		o.breakers.Add(ctx, 1, metric.WithAttributes(server(e.Host)...))
	case neuracraft.BreakerClosed:
		o.breakers.Add(ctx, -1, metric.WithAttributes(server(e.Host)...))
	case neuracraft.PaceChanged:
		o.paced.set(e.Host, e.Pace, time.Now().Add(e.Duration))
	}
}

// waitSpan records the wait that e ends as a span from its start to now,
// a child of the span in ctx, if there is one.
func (o *Observer) waitSpan(ctx context.Context, e neuracraft.Event) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	end := time.Now()
	_, span := o.tracer.Start(ctx, "neuracraft.wait", trace.WithTimestamp(end.Add(-e.Duration)),
		trace.WithAttributes(waitKindKey.String(string(e.Wait))))
	if e.Err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(e.Err)))
		span.SetStatus(codes.Error, "wait cut short")
	}
	span.End(trace.WithTimestamp(end))
}

// maxPacedHosts bounds the hosts whose pace an Observer keeps.
const maxPacedHosts = 4096

// pacedHosts is the pace of each host, as the Transports told it, for the
// pace gauge. Its zero value is empty and ready; it is safe for
// concurrent use.
type pacedHosts struct {
	mu sync.Mutex
	m  map[string]*pacedHost
}

// A pacedHost is one host's pace: the most requests a second, until
// until.
type pacedHost struct {
	attrs attribute.Set
	pace  float64
	until time.Time
}

// set records that host's pace is pace until until (0: not paced). When
// that would keep more than maxPacedHosts, the hosts no longer paced are
// forgotten first, and then, to make room for a paced host, the one whose
// pace ends first; a host not paced is then not kept (it reads nothing).
func (p *pacedHosts) set(host string, pace float64, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.m[host]; ok {
		h.pace, h.until = pace, until
		return
	}
	if p.m == nil {
		p.m = make(map[string]*pacedHost)
	}
	if len(p.m) >= maxPacedHosts && !p.trim(time.Now(), pace > 0) {
		return
	}
	p.m[host] = &pacedHost{attrs: attribute.NewSet(server(host)...), pace: pace, until: until}
}

// trim forgets the hosts no longer paced at now, or else, when paced is
// set, the host whose pace ends first, and reports whether there is room
// for one more host. p.mu must be held.
func (p *pacedHosts) trim(now time.Time, paced bool) bool {
	var first *pacedHost
	var firstHost string
	for host, h := range p.m {
		switch {
		case h.pace == 0 || !h.until.After(now):
			delete(p.m, host)
		case first == nil || h.until.Before(first.until):
			first, firstHost = h, host
		}
	}
	if len(p.m) >= maxPacedHosts && paced {
		delete(p.m, firstHost)
	}
	return len(p.m) < maxPacedHosts
}

// observe reports each host's pace now: 0 once it has run out.
func (p *pacedHosts) observe(_ context.Context, obs metric.Float64Observer) error {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.m {
		pace := h.pace
		if !h.until.After(now) {
			pace = 0
		}
		obs.Observe(pace, metric.WithAttributeSet(h.attrs))
	}
	return nil
}

// maxAnswerSets bounds the attribute sets an Observer keeps for the
// attempts answered without error.
const maxAnswerSets = 1024

// answerSets keeps the attribute set of each (method, host, status) of the
// attempts that got an answer below 400 and no error, so that the success
// path records with a set built once instead of building its attributes
// and set on every attempt. It keeps at most maxAnswerSets, the first
// ones met; an attempt whose set it does not keep has its attributes built
// as before, so a table full of hosts met once costs the others the
// saving, not memory. Its zero value is empty and ready; it is safe for
// concurrent use: every access holds mu.
type answerSets struct {
	mu sync.Mutex
	m  map[answerKey]answerSet
}

// answerSet is the attribute set of an answered attempt, and the options
// that record with it, built once so that recording allocates nothing of
// its own. Neither is modified once built.
type answerSet struct {
	set  attribute.Set
	opts []metric.AddOption
}

// answerKey is what the attributes of an answered attempt depend on: its
// method as http.request.method, its host and its status.
type answerKey struct {
	method, host string
	status       int
}

// get returns the attribute set of e, an attempt that ended, as outcome(e)
// builds it, and true, when e got an answer from 100 to 399 without error
// and the set is kept or there is room to keep it; else false.
func (a *answerSets) get(e neuracraft.Event) (answerSet, bool) {
	if e.Err != nil || e.Status < 100 || e.Status >= 400 {
		return answerSet{}, false
	}
	k := answerKey{method: method(e.Method), host: e.Host, status: e.Status}
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.m[k]; ok {
		return s, true
	}
	if len(a.m) >= maxAnswerSets {
		return answerSet{}, false
	}
	if a.m == nil {
		a.m = make(map[answerKey]answerSet)
	}
	set := attribute.NewSet(outcome(e)...)
	s := answerSet{set: set, opts: []metric.AddOption{metric.WithAttributeSet(set)}}
	a.m[k] = s
	return s, true
}

// held reports whether a wait of kind k holds its request in a cooldown.
func held(k neuracraft.WaitKind) bool { return k == "cooldown" || k == "fleet" }

// server is the attributes of a host: server.address, and server.port
// when hostport names one.
func server(hostport string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 6) // room for what the callers add
	host, port := splitHostPort(hostport)
	attrs = append(attrs, semconv.ServerAddressKey.String(host))
	if port > 0 {
		attrs = append(attrs, semconv.ServerPortKey.Int(port))
	}
	return attrs
}

// request is the attributes of e's request: its server and its method.
func request(e neuracraft.Event) []attribute.KeyValue {
	return append(server(e.Host), semconv.HTTPRequestMethodKey.String(method(e.Method)))
}

// outcome is the attributes of e's attempt: the request's, its status
// and, when it failed, error.type.
func outcome(e neuracraft.Event) []attribute.KeyValue {
	attrs := append(request(e), statusAttr(e)...)
	if e.Err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(e.Err)))
	}
	return attrs
}

// statusAttr is http.response.status_code when e's attempt got an answer.
func statusAttr(e neuracraft.Event) []attribute.KeyValue {
	if e.Status == 0 {
		return nil
	}
	return []attribute.KeyValue{semconv.HTTPResponseStatusCodeKey.Int(e.Status)}
}

// splitHostPort splits a URL's host into its name (without the brackets
// of an IPv6 literal) and its port, 0 when it names none (or a malformed
// one).
func splitHostPort(hostport string) (host string, port int) {
	host = hostport
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host = hostport[:i]
		if n, err := strconv.Atoi(hostport[i+1:]); err == nil && n > 0 && n <= 65535 {
			port = n
		}
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), port
}

// method is m as http.request.method: one of the methods the HTTP
// conventions know, else "_OTHER", so that a caller's invented methods
// cannot grow the number of series.
func method(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY":
		return m
	case "":
		return "GET" // net/http's meaning of an empty method
	}
	return "_OTHER"
}

// errorType is error.type for err: the status of an answer, as "503";
// else, for a failure without an answer, the type of its cause, as the
// HTTP conventions describe ("*net.OpError"), "timeout" for a timeout and
// "canceled" for a cancelled context.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) {
		return strconv.Itoa(apiErr.StatusCode)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	var reqErr *neuracraft.RequestError
	if errors.As(err, &reqErr) && reqErr.Err != nil {
		err = reqErr.Err
	}
	return semconv.ErrorType(err).Value.AsString()
}
