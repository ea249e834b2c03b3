package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
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

// member starts a Fleet on its own client to s, closed at the end of t.
func member(t *testing.T, s *redisServer, opts Options) *Fleet {
	t.Helper()
	f := New(s.client(t), opts)
	t.Cleanup(func() { f.Close() })
	return f
}

// waitFor polls cond every millisecond up to limit and returns how long
// it took to become true, or -1.
func waitFor(limit time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	return -1
}

func TestFleetCooldownReachesEveryMember(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	var members []*Fleet
	for range 4 {
		members = append(members, member(t, s, Options{}))
	}
	start := time.Now()
	members[0].Announce(host, 2*time.Second, 10*time.Millisecond, 429)
	until, cause, ok := members[0].Cooldown(host)
	if !ok || cause != 429 || until.Sub(start) < 2*time.Second {
		t.Fatalf("announcer: Cooldown = %v, %v, %v", until.Sub(start), cause, ok)
	}
	for i, m := range members[1:] {
		took := waitFor(time.Second, func() bool { _, _, ok := m.Cooldown(host); return ok })
		if took < 0 || time.Since(start) > 50*time.Millisecond {
			t.Fatalf("member %d learnt the cooldown after %v (limit 50ms)", i+1, time.Since(start))
		}
		got, cause, _ := m.Cooldown(host)
		if d := got.Sub(until); d < -20*time.Millisecond || d > 20*time.Millisecond || cause != 429 {
			t.Errorf("member %d: cooldown ends %v from the announcer's, cause %v", i+1, d, cause)
		}
	}
	t.Logf("every member knew within %v", time.Since(start))
	if _, _, ok := members[1].Cooldown("other.example"); ok {
		t.Error("a host nobody announced is cooling down")
	}
}

func TestFleetLateMemberHolds(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	first := member(t, s, Options{})
	first.Announce(host, 3*time.Second, 10*time.Millisecond, 503)
	late := member(t, s, Options{}) // started during the cooldown
	until, cause, ok := late.Cooldown(host)
	if !ok || cause != 503 {
		t.Fatalf("late member: Cooldown = %v, %v, %v", until, cause, ok)
	}
	if rest := time.Until(until); rest < 2*time.Second || rest > 3*time.Second {
		t.Errorf("late member: cooldown ends in %v, want about 3s", rest)
	}

	// Its Transport holds requests: a call that cannot wait fails unsent.
	var sent atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
	defer api.Close()
	tr := transport(late)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := get(ctx, tr, api.URL, "late")
	var cd *neuracraft.CooldownError
	if !errors.As(err, &cd) || !errors.Is(err, neuracraft.ErrRateLimited) || cd.Cause != 503 {
		t.Fatalf("err = %v, want a *CooldownError for 503 matching ErrRateLimited", err)
	}
	if sent.Load() != 0 {
		t.Errorf("%d requests reached the server", sent.Load())
	}
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
// server, with X-Request-ID id.
func get(ctx context.Context, tr http.RoundTripper, server, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+host+"/v1/pipelines", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Test-Server", server)
	req.Header.Set("X-Request-ID", id)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestFleetHeldCallsWaitTheirTurn(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	a, b := member(t, s, Options{}), member(t, s, Options{})
	var mu sync.Mutex
	var arrivals []time.Time
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}))
	defer api.Close()
	trs := []*neuracraft.Transport{transport(a), transport(b)}
	for _, tr := range trs {
		defer tr.CloseIdleConnections()
	}
	start := time.Now()
	a.Announce(host, 500*time.Millisecond, 10*time.Millisecond, 429)
	waitFor(time.Second, func() bool { _, _, ok := b.Cooldown(host); return ok })

	// A call whose deadline comes before the end fails at once, unsent.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := get(ctx, trs[1], api.URL, "hurried")
	if !errors.Is(err, neuracraft.ErrRateLimited) || time.Since(began) > 50*time.Millisecond {
		t.Fatalf("hurried call: %v after %v, want a *CooldownError at once", err, time.Since(began))
	}

	// Twelve calls over both members wait and go one fleet-wide gap apart.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			if _, err := get(context.Background(), trs[i%2], api.URL, fmt.Sprint("held", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 12 {
		t.Fatalf("server saw %d requests, want 12", len(arrivals))
	}
	sort.Slice(arrivals, func(i, j int) bool { return arrivals[i].Before(arrivals[j]) })
	if first := arrivals[0].Sub(start); first < 490*time.Millisecond {
		t.Errorf("first held call sent %v after the 429, before the cooldown's end", first)
	}
	// 11 gaps of 10 ms; a late first wake-up can shorten what the server
	// sees (the exact turns are checked in TestFleetOnePaceAcrossMembers).
	if span := arrivals[11].Sub(arrivals[0]); span < 60*time.Millisecond {
		t.Errorf("12 held calls went out within %v, want them about 11 gaps of 10ms apart", span)
	}
}

func TestFleetOnePaceAcrossMembers(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	var members []*Fleet
	for range 3 {
		members = append(members, member(t, s, Options{}))
	}
	members[0].Announce(host, 300*time.Millisecond, 10*time.Millisecond, 429)
	for _, m := range members {
		waitFor(time.Second, func() bool { _, _, ok := m.Cooldown(host); return ok })
	}
	// Turns asked one after another, round the members, follow each other
	// exactly one gap apart in the server's clock, in the order asked.
	var ids []int64
	for i := range 9 {
		turn, err := members[i%3].Reserve(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, turn.ID)
	}
	for i := 1; i < len(ids); i++ {
		if d := ids[i] - ids[i-1]; d != 10000 {
			t.Errorf("turn %d comes %dµs after turn %d, want 10000", i, d, i-1)
		}
	}
	// Asked concurrently from every member: distinct turns, one gap apart.
	var mu sync.Mutex
	var concurrent []int64
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			turn, err := members[i%3].Reserve(context.Background(), host)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			concurrent = append(concurrent, turn.ID)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(concurrent, func(i, j int) bool { return concurrent[i] < concurrent[j] })
	for i := range concurrent {
		if want := ids[len(ids)-1] + int64(i+1)*10000; concurrent[i] != want {
			t.Fatalf("concurrent turns %v are not one gap apart after %d", concurrent, ids[len(ids)-1])
		}
	}
}

func TestFleetSlowsDownWhenTheQueueDrawsA429(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	f := member(t, s, Options{})
	turns := func(n int) []int64 {
		var ids []int64
		for range n {
			turn, err := f.Reserve(context.Background(), host)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, turn.ID)
		}
		return ids
	}
	f.Announce(host, 100*time.Millisecond, 10*time.Millisecond, 429)
	first := turns(30) // the queue drains from 100 ms to 400 ms
	time.Sleep(150 * time.Millisecond)
	f.Announce(host, 100*time.Millisecond, 10*time.Millisecond, 429) // drawn by a released request
	second := turns(3)
	for i, ids := range [][]int64{first[:3], second} {
		for j := 1; j < len(ids); j++ {
			if d, want := ids[j]-ids[j-1], int64(10000<<i); d != want {
				t.Errorf("wave %d: turns %dµs apart, want %d", i+1, d, want)
			}
		}
	}
}

func TestFleetCancelGivesTurnBack(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	a, b := member(t, s, Options{}), member(t, s, Options{})
	a.Announce(host, time.Second, 10*time.Millisecond, 429)
	waitFor(time.Second, func() bool { _, _, ok := b.Cooldown(host); return ok })
	var turns []neuracraft.Turn
	for i := range 4 {
		turn, err := []*Fleet{a, b}[i%2].Reserve(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		turns = append(turns, turn)
	}
	b.Cancel(host, turns[3]) // the last: the queue closes up
	a.Cancel(host, turns[1]) // in the middle: a hole the next caller takes
	for _, want := range []int64{turns[1].ID, turns[3].ID, turns[3].ID + 10000} {
		turn, err := b.Reserve(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		if turn.ID != want {
			t.Errorf("turn %d, want %d (first %d)", turn.ID, want, turns[0].ID)
		}
	}
	a.Cancel(host, neuracraft.Turn{Wait: time.Second}) // refused turns have no ID: nothing happens
}

func TestFleetGarbageInRedis(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	ctx := context.Background()
	var log errLog
	opts := Options{MaxRetryAfter: 2 * time.Second, OnError: log.add}
	keys := func(h string) []string { return (&Fleet{opt: Options{Prefix: DefaultPrefix}}).keys(h) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A hostile state: a cooldown for hours, a gap of an hour; a key of
	// the wrong type; an index full of junk.
	must(rdb.HSet(ctx, keys("far.example")[0], "until", "99999999999999999999", "next", "nan",
		"gap", "3600000000", "cause", "9999").Err())
	must(rdb.Set(ctx, keys("typo.example")[0], "not a hash", 0).Err())
	must(rdb.ZAdd(ctx, keys("typo.example")[1], redis.Z{Score: 1, Member: "x"}).Err())
	must(rdb.ZAdd(ctx, "neuracraft:hosts", redis.Z{Score: 1e18, Member: "far.example"},
		redis.Z{Score: 1e18, Member: "bad host{}"}, redis.Z{Score: 1e18, Member: "typo.example"}).Err())
	f := member(t, s, opts)
	if _, _, ok := f.Cooldown("far.example"); ok {
		t.Error("a garbled until was taken for a cooldown")
	}
	// Hostile messages: clamped to MaxRetryAfter, or dropped.
	for _, msg := range []string{"hello", "1 2 3 4 5", "-5 10000 429 x.example", "99999999999999 10000 429 long.example",
		"500000 99999999999 777 gap.example", "500000 10000 429 bad{host}", "500000 10000 429 last.example"} {
		must(rdb.Publish(ctx, "neuracraft:cooldowns", msg).Err())
	}
	waitFor(time.Second, func() bool { _, _, ok := f.Cooldown("last.example"); return ok })
	if until, _, ok := f.Cooldown("long.example"); !ok || time.Until(until) > 2*time.Second {
		t.Errorf("a pause of 3 years from a message: ok %v, holds %v (cap 2s)", ok, time.Until(until))
	}
	if _, cause, _ := f.Cooldown("gap.example"); cause != 429 {
		t.Errorf("cause 777 read as %v, want 429", cause)
	}
	for _, h := range []string{"x.example", "bad{host}"} {
		if _, _, ok := f.Cooldown(h); ok {
			t.Errorf("%s: garbled message taken", h)
		}
	}
	if log.count(ErrGarbled) < 4 {
		t.Errorf("%d garbled values reported, want at least 4: %v", log.count(ErrGarbled), log.errs)
	}
	// Turns over garbled state: the garbage is read as absent and replaced.
	for _, h := range []string{"far.example", "typo.example", "long.example"} {
		f.Announce(h, 200*time.Millisecond, 10*time.Millisecond, 429)
		turn, err := f.Reserve(ctx, h)
		if err != nil {
			t.Errorf("%s: %v", h, err)
			continue
		}
		if turn.Wait > 2*time.Second {
			t.Errorf("%s: turn in %v, past MaxRetryAfter", h, turn.Wait)
		}
	}
	// A server answering garbage to the script: the request falls back.
	must(rdb.HSet(ctx, keys("gap.example")[0], "until", "1", "next", "1").Err())
}

func TestFleetRedisKilledMidStorm(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	var log errLog
	var members []*Fleet
	for range 4 {
		members = append(members, member(t, s, Options{OnError: log.add}))
	}
	// For its first second, the API answers 429 with Retry-After: 1 to
	// every other request.
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
	var slowest atomic.Int64
	var redisWait atomic.Int64 // the longest a call waited in a Fleet method
	for i, m := range members {
		tr := transport(nil)
		tr.Coordinator = timed{m, &redisWait}
		defer tr.CloseIdleConnections()
		for c := range 10 {
			wg.Go(func() {
				for k := range 3 {
					began := time.Now()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := get(ctx, tr, api.URL, fmt.Sprintf("m%d-c%d-%d", i, c, k))
					cancel()
					took := time.Since(began)
					for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
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
						t.Errorf("call failed with neither success nor its API error: %v", err)
					}
				}
			})
		}
	}
	time.Sleep(300 * time.Millisecond) // mid-storm: the first cooldown runs
	s.stop()
	// With Redis gone, a turn is refused within OpTimeout and the call
	// uses its own queue.
	began := time.Now()
	_, err := members[0].Reserve(context.Background(), host)
	if err == nil || time.Since(began) > DefaultOpTimeout+schedulingMargin {
		t.Errorf("Reserve with Redis down: %v after %v", err, time.Since(began))
	}
	wg.Wait()
	t.Logf("120 calls: %d succeeded, %d got their 429 or *CooldownError, %d other; slowest %v; %d Redis errors reported",
		ok.Load(), apiErrs.Load(), other.Load(), time.Duration(slowest.Load()), log.count(nil))
	if ok.Load()+apiErrs.Load() != 120 {
		t.Errorf("%d calls of 120 completed", ok.Load()+apiErrs.Load())
	}
	if log.count(nil) == 0 {
		t.Error("Redis going away was not reported")
	}
	if w := time.Duration(redisWait.Load()); w > DefaultOpTimeout+schedulingMargin {
		t.Errorf("a call waited %v in a Fleet method, want at most OpTimeout (%v)", w, DefaultOpTimeout)
	} else {
		t.Logf("the longest a call waited in a Fleet method: %v", w)
	}
}

// timed is a Coordinator that records in longest the longest any call to
// its Fleet's Announce, Reserve or Cancel took.
type timed struct {
	*Fleet
	longest *atomic.Int64
}

func (c timed) record(began time.Time) {
	for took, old := int64(time.Since(began)), c.longest.Load(); took > old && !c.longest.CompareAndSwap(old, took); old = c.longest.Load() {
	}
}

func (c timed) Announce(host string, pause, gap time.Duration, cause neuracraft.Code) {
	defer c.record(time.Now())
	c.Fleet.Announce(host, pause, gap, cause)
}

func (c timed) Reserve(ctx context.Context, host string) (neuracraft.Turn, error) {
	defer c.record(time.Now())
	return c.Fleet.Reserve(ctx, host)
}

func (c timed) Cancel(host string, turn neuracraft.Turn) {
	defer c.record(time.Now())
	c.Fleet.Cancel(host, turn)
}

func TestFleetRedisFrozen(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	f := member(t, s, Options{})
	f.Announce(host, time.Second, 10*time.Millisecond, 429)
	s.freeze() // connections stay open, nothing answers
	defer s.thaw()
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"Reserve", func() error { _, err := f.Reserve(context.Background(), host); return err }},
		{"Announce", func() error { f.Announce("other.example", 5*time.Second, 10*time.Millisecond, 429); return nil }},
		{"Cancel", func() error { f.Cancel(host, neuracraft.Turn{ID: 1}); return nil }},
	} {
		began := time.Now()
		_ = op.run()
		if took := time.Since(began); took > DefaultOpTimeout+schedulingMargin {
			t.Errorf("%s took %v with Redis frozen, want at most OpTimeout (%v)", op.name, took, DefaultOpTimeout)
		}
	}
	s.thaw()
}

func TestFleetRedisRestarted(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	opts := Options{RetryInterval: 100 * time.Millisecond}
	a, b := member(t, s, opts), member(t, s, opts)
	a.Announce(host, 5*time.Second, 10*time.Millisecond, 429)
	waitFor(time.Second, func() bool { _, _, ok := b.Cooldown(host); return ok })
	s.stop()
	s.start() // empty: the cooldown is lost in Redis, not in the members
	// Both reconnect by themselves: an announcement reaches the other.
	took := waitFor(5*time.Second, func() bool {
		a.Announce("after.example", 2*time.Second, 10*time.Millisecond, 429)
		_, _, ok := b.Cooldown("after.example")
		return ok
	})
	if took < 0 {
		t.Fatal("members did not reconnect within 5s")
	}
	t.Logf("reconnected within %v", took)
	// The first turn asked records the cooldown the members still know.
	if _, err := b.Reserve(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	c := member(t, s, Options{})
	want, _, _ := a.Cooldown(host)
	if until, _, ok := c.Cooldown(host); !ok || until.Sub(want) < -50*time.Millisecond || until.Sub(want) > 50*time.Millisecond {
		t.Errorf("a member started after the restart: Cooldown ends %v from the first member's (ok %v)", until.Sub(want), ok)
	}
}

func TestFleetCloseStopsEverything(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	f := New(rdb, Options{})
	f.Announce(host, time.Second, 10*time.Millisecond, 429)
	if _, err := f.Reserve(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	s.stop() // Close also works while the subscriber is reconnecting
	time.Sleep(50 * time.Millisecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close the Fleet works alone: it still knows, and fails fast.
	if _, _, ok := f.Cooldown(host); !ok {
		t.Error("Close forgot the cooldowns")
	}
	if _, err := f.Reserve(context.Background(), host); !errors.Is(err, errClosed) {
		t.Errorf("Reserve after Close: %v", err)
	}
}

func TestFleetStoresOnlyHostsAndInstants(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	rdb := s.client(t)
	ctx := context.Background()
	watch := rdb.Subscribe(ctx, "neuracraft:cooldowns")
	defer watch.Close()
	if _, err := watch.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	f := member(t, s, Options{})
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer api.Close()
	tr := transport(f)
	defer tr.CloseIdleConnections()
	tr.Retry.MaxAttempts = 1
	req, err := http.NewRequest("POST", "https://user:hunter2@"+host+"/v1/pipelines/pipe_secret?api_key=sk_live_secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Server", api.URL)
	req.Header.Set("Authorization", "Bearer tok_secret")
	if _, err := tr.RoundTrip(req); !errors.Is(err, neuracraft.ErrRateLimited) {
		t.Fatalf("err = %v, want the 429", err)
	}
	if _, err := f.Reserve(ctx, host); err != nil { // a turn, so the queue's state is there too
		t.Fatal(err)
	}
	msg, err := watch.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := []string{msg.Channel, msg.Payload}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		stored = append(stored, k)
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				stored = append(stored, f, v)
			}
		case "zset":
			stored = append(stored, rdb.ZRange(ctx, k, 0, -1).Val()...)
		}
	}
	for _, v := range stored {
		for _, secret := range []string{"secret", "hunter2", "user", "/v1", "pipe_", "?", "POST"} {
			if strings.Contains(v, secret) {
				t.Errorf("Redis holds %q, which contains %q", v, secret)
			}
		}
	}
	// The state expires a second after the pause (2 s) and its queue.
	ttl := rdb.PTTL(ctx, "{neuracraft:"+host+"}:cooldown").Val()
	if ttl < 2500*time.Millisecond || ttl > 3100*time.Millisecond {
		t.Errorf("the state expires in %v, want about 3s", ttl)
	}
	t.Logf("in Redis: %q", stored)
}
