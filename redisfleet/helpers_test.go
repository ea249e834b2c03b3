// This file holds the helpers shared by the tests of package redisfleet:
// the leak check, members on a test Redis or without one, a Transport whose
// requests to the API's host go to a test server, and the error log a
// Fleet reports to. The redis-server itself is in server_test.go.

package redisfleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/neuracraft/neuracraft-go"
)

const host = "api.neuracraft.test"

// schedulingMargin is what a timer may fire late on a busy machine (CI
// runners, -race): bounds on waits are OpTimeout plus this.
const schedulingMargin = 200 * time.Millisecond

// redisLog takes what go-redis logs in place of the standard logger: the
// "connection pool: failed to dial" lines of members whose Redis a test
// stopped, froze or cut, by design. It counts the lines and drops them;
// the tests' assertions, not these lines, report failures (TestMain
// prints the count with -v).
type redisLog struct{ lines atomic.Int64 }

// Printf implements go-redis's internal.Logging.
func (l *redisLog) Printf(context.Context, string, ...any) { l.lines.Add(1) }

func TestMain(m *testing.M) {
	quiet := &redisLog{}
	redis.SetLogger(quiet)
	code := m.Run()
	if n := quiet.lines.Load(); n > 0 && testing.Verbose() {
		fmt.Printf("go-redis logged %d lines (dropped: the tests stop Redis under members)\n", n)
	}
	os.Exit(code)
}

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
func member(t *testing.T, s redisTarget, opts Options) *Fleet {
	t.Helper()
	f := New(s.client(t), opts)
	t.Cleanup(func() { f.Close() })
	return f
}

// synced waits until every member hears an announcement of members[0]:
// all are subscribed.
func synced(t *testing.T, members ...*Fleet) {
	t.Helper()
	for _, m := range members {
		_, ok := waitFor(5*time.Second, func() bool {
			members[0].Announce("ready.example", pauseOf(time.Second, 429))
			_, ok := m.Cooldown("ready.example")
			return ok
		})
		require.True(t, ok, "a member did not subscribe within 5s")
	}
}

// heldTurns announces a pause of d (429) to host through members[0],
// waits until the last member knows its epoch (Redis recorded it), and
// reserves n turns, the members taking them in turn.
func heldTurns(t *testing.T, d time.Duration, n int, members ...*Fleet) []neuracraft.Turn {
	t.Helper()
	members[0].Announce(host, pauseOf(d, 429))
	last := members[len(members)-1]
	_, learnt := waitFor(time.Second, func() bool { cd, _ := last.Cooldown(host); return cd.Epoch != 0 })
	require.True(t, learnt, "the cooldown did not reach the member within 1s")
	var turns []neuracraft.Turn
	for i := range n {
		turn, err := members[i%len(members)].Reserve(context.Background(), host, neuracraft.Hold{})
		require.NoError(t, err)
		turns = append(turns, turn)
	}
	return turns
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

// slowStart is the slot of each turn of the pace's slow start, in µs from
// the first, as ../testdata/pace_schedules.json has it (TestFleetPaceSchedules
// holds the scripts to it).
func slowStart(t testing.TB) []int64 {
	t.Helper()
	b, err := os.ReadFile("../testdata/pace_schedules.json")
	require.NoError(t, err)
	var scenarios []paceScenario
	require.NoError(t, json.Unmarshal(b, &scenarios))
	require.NotEmpty(t, scenarios)
	require.Equal(t, "slow start", scenarios[0].Name)
	var offsets []int64
	for _, turn := range scenarios[0].Phases[0].Turns {
		offsets = append(offsets, turn[0])
	}
	return offsets
}

// pauseOf is a Pause of d for status cause, with the gap a Transport
// proposes after a pause of a second or more: 10 ms.
func pauseOf(d time.Duration, cause neuracraft.Code) neuracraft.Pause {
	return neuracraft.Pause{RetryAfter: d, Gap: 10 * time.Millisecond, Cause: cause}
}

// timed is a Coordinator that records in longest the longest time one
// call spent in its Fleet's methods, all of them together: what the
// Transport says the call spent before (Pause.Spent, Hold.Spent), plus
// the method at hand. Cancel, which a call makes on its way out, is timed
// alone.
type timed struct {
	*Fleet
	longest *atomic.Int64
}

func (c timed) record(spent time.Duration, began time.Time) {
	took := int64(spent + time.Since(began))
	for old := c.longest.Load(); took > old && !c.longest.CompareAndSwap(old, took); old = c.longest.Load() {
	}
}

func (c timed) Announce(host string, p neuracraft.Pause) {
	defer c.record(p.Spent, time.Now())
	c.Fleet.Announce(host, p)
}

func (c timed) Reserve(ctx context.Context, host string, h neuracraft.Hold) (neuracraft.Turn, error) {
	defer c.record(h.Spent, time.Now())
	return c.Fleet.Reserve(ctx, host, h)
}

func (c timed) Cancel(host string, turn neuracraft.Turn) {
	defer c.record(0, time.Now())
	c.Fleet.Cancel(host, turn)
}

// stormResult is what runStorm saw.
type stormResult struct {
	ok, apiErrs, other int32         // calls that succeeded, ended in their 429 or a *CooldownError, or else
	slowest            time.Duration // the slowest call
	inFleet            time.Duration // the longest one call spent in the Fleet's methods
}

func (r stormResult) String() string {
	return fmt.Sprintf("%d calls: %d succeeded, %d got their 429 or *CooldownError, %d other; slowest %v; "+
		"the longest a call spent in the Fleet's methods: %v", r.ok+r.apiErrs+r.other, r.ok, r.apiErrs, r.other,
		r.slowest.Round(time.Millisecond), r.inFleet)
}

// check asserts that every call completed, with success or its API's
// answer, and that none spent longer than limit in the Fleet's methods.
func (r stormResult) check(t *testing.T, limit time.Duration) {
	t.Helper()
	assert.Zero(t, r.other, "calls that ended with neither success nor their API's answer")
	assert.LessOrEqual(t, r.inFleet, limit, "a call spent %v in the Fleet's methods, want at most %v", r.inFleet, limit)
}

// runStorm sends, through one Transport per member, 10 callers x 3 calls
// (10 s deadline each) to an API that, for its first second, answers 429
// with Retry-After: 1 to every other request; 300 ms in, it runs during.
func runStorm(t *testing.T, members []*Fleet, during func()) stormResult {
	var n atomic.Int32
	stormEnds := time.Now().Add(time.Second)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 && time.Now().Before(stormEnds) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer api.Close()
	var wg sync.WaitGroup
	var ok, apiErrs, other atomic.Int32
	var slowest, inFleet atomic.Int64
	for i, m := range members {
		tr := transport(nil)
		tr.Coordinator = timed{m, &inFleet}
		defer tr.CloseIdleConnections()
		for c := range 10 {
			wg.Go(func() {
				for k := range 3 {
					began := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := get(ctx, tr, api.URL, fmt.Sprintf("m%d-c%d-%d", i, c, k))
					cancel()
					took := int64(time.Since(began))
					for old := slowest.Load(); took > old && !slowest.CompareAndSwap(old, took); old = slowest.Load() {
					}
					var apiErr *neuracraft.APIError
					var cd *neuracraft.CooldownError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &apiErr) && apiErr.StatusCode == 429,
						errors.As(err, &cd): // as without a fleet: the deadline could not wait
						apiErrs.Add(1)
					default:
						other.Add(1)
						assert.Fail(t, "call failed with neither success nor its API error", "%v", err)
					}
				}
			})
		}
	}
	time.Sleep(300 * time.Millisecond) // mid-storm: the first cooldown runs
	if during != nil {
		during()
	}
	wg.Wait()
	return stormResult{ok: ok.Load(), apiErrs: apiErrs.Load(), other: other.Load(),
		slowest: time.Duration(slowest.Load()), inFleet: time.Duration(inFleet.Load())}
}
