// The costs of the host table (hosts.go), as benchmarks and the tests that
// bound them: memory and time with 100,000 failing hosts, a healthy host's
// call while another host is in trouble, the lookup, and the attempts the
// retry budget saves in an outage.

package neuracraft

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failHosts makes one failing call to each of n distinct hosts, numbered
// from first, through tr.
func failHosts(tb testing.TB, tr *Transport, first, n int) {
	for i := first; i < first+n; i++ {
		req, err := http.NewRequest("GET", fmt.Sprintf("https://h%d.example/v1/pipelines", i), nil)
		if err != nil {
			tb.Fatal(err)
		}
		req.Header.Set("X-Request-ID", "req_bench")
		if _, err := tr.RoundTrip(req); err == nil {
			tb.Fatal("a call to a failing host succeeded")
		}
	}
}

// newFailingTransport is a Transport over failingBase that does not retry,
// so that every call is one failure.
func newFailingTransport() *Transport {
	return &Transport{Base: failingBase, Retry: RetryPolicy{MaxAttempts: 1}}
}

// TestManyFailingHostsMemory: 100,000 distinct hosts that fail keep at
// most maxHosts entries, in well under 2 MiB.
func TestManyFailingHostsMemory(t *testing.T) {
	tr := newFailingTransport()
	failHosts(t, tr, 0, 10) // the table exists before the first reading
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	failHosts(t, tr, 10, 100_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d KiB for 100,000 failing hosts", grown>>10)
	assert.Less(t, grown, int64(1<<20), "heap growth, bytes")
	assert.Equal(t, maxHosts, tr.table().len())
	runtime.KeepAlive(tr)
}

// TestManyFailingHostsCost: a call to a new failing host costs no more
// (within 2x) when 99,000 hosts have failed before than on an empty
// table: dropping the oldest entry is constant time. It runs the two
// halves of BenchmarkManyFailingHosts twice, interleaved, and
// compares the fastest run of each, so that a busy machine does not
// decide.
func TestManyFailingHostsCost(t *testing.T) {
	full := newFailingTransport()
	failHosts(t, full, 0, 99_000)
	next := 99_000
	var first, last []time.Duration
	for range 2 {
		first = append(first, time.Duration(testing.Benchmark(benchFirstHosts).NsPerOp()))
		last = append(last, time.Duration(testing.Benchmark(func(b *testing.B) { benchMoreHosts(b, full, &next) }).NsPerOp()))
	}
	f, l := slices.Min(first), slices.Min(last)
	t.Logf("1,000 calls to new hosts: first 1,000 %v, last 1,000 of 100,000 %v (runs %v, %v)", f, l, first, last)
	require.NotZero(t, f)
	assert.LessOrEqual(t, float64(l)/float64(f), 2.0, "last-1,000 cost over first-1,000 cost")
}

// BenchmarkManyFailingHosts: one op is 1,000 failing calls to new hosts,
// on an empty table (first-1000) and on a table that 99,000 failing hosts
// have filled (last-1000).
func BenchmarkManyFailingHosts(b *testing.B) {
	b.Run("first-1000", benchFirstHosts)
	b.Run("last-1000", benchLastHosts)
}

func benchFirstHosts(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		failHosts(b, newFailingTransport(), 0, 1000)
	}
}

func benchLastHosts(b *testing.B) {
	tr := newFailingTransport()
	failHosts(b, tr, 0, 99_000)
	next := 99_000
	benchMoreHosts(b, tr, &next)
}

// benchMoreHosts makes each op 1,000 failing calls to hosts new to tr,
// numbered from *next.
func benchMoreHosts(b *testing.B, tr *Transport, next *int) {
	b.ReportAllocs()
	for b.Loop() {
		failHosts(b, tr, *next, 1000)
		*next += 1000
	}
}

// BenchmarkHealthyHostParallel: successful calls to a healthy host from
// every core, over a base that answers at once, with no host in trouble
// and while another host is cooling down with its breaker open. The two
// should be within 5%: a healthy host's success path takes no lock, only
// a hash of the host and an atomic load. id=generated is the default (a
// fresh X-Request-ID, 4 allocations); id=caller has none, so the
// Transport's own cost shows. Compare with:
//
//	go test -run '^$' -bench HealthyHostParallel -benchmem -count 10 . | benchstat -col /trouble -
func BenchmarkHealthyHostParallel(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host == "down.example" {
			return failingBase(req)
		}
		return ok, nil
	})
	for _, id := range []string{"generated", "caller"} {
		for _, trouble := range []string{"none", "one-host"} {
			b.Run("id="+id+"/trouble="+trouble, func(b *testing.B) {
				tr := &Transport{Base: base, Retry: RetryPolicy{MaxAttempts: 1}}
				if trouble != "none" {
					troubleHost(b, tr)
				}
				req, err := http.NewRequestWithContext(context.Background(), "GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
				if err != nil {
					b.Fatal(err)
				}
				if id == "caller" {
					req.Header.Set("X-Request-ID", "req_bench")
				}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := tr.RoundTrip(req); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// troubleHost spends the budget of down.example through tr (its breaker
// is open) and starts an hour's cooldown on it.
func troubleHost(b *testing.B, tr *Transport) {
	for range 10 {
		req, err := http.NewRequest("GET", "https://down.example/v1/pipelines", nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = tr.RoundTrip(req)
	}
	s := tr.table().lookup("down.example")
	if s == nil {
		b.Fatal("no host in trouble")
	}
	s.coolUntil(time.Now().Add(time.Hour), time.Hour, 503)
}

// BenchmarkHostLookup is what a call to a healthy host pays to learn that
// it is healthy: with no table (no host ever in trouble), with one host in
// trouble, and with the table full.
func BenchmarkHostLookup(b *testing.B) {
	for _, tc := range []struct {
		name  string
		hosts int
	}{{"no-table", 0}, {"one-in-trouble", 1}, {"1024-in-trouble", maxHosts}} {
		b.Run(tc.name, func(b *testing.B) {
			tr := &Transport{}
			for i := range tc.hosts {
				addFailing(tr.tableForUpdate(), fmt.Sprintf("h%d.example", i), time.Now())
			}
			var found int
			for b.Loop() {
				if h := tr.table(); h != nil && h.lookup("api.neuracraft.com") != nil {
					found++
				}
			}
			if found != 0 {
				b.Fatal("a healthy host has an entry")
			}
		})
	}
}

// BenchmarkOutage makes calls against a host that answers 503 to
// everything and reports the attempts each call cost; the retry budget
// keeps it near 1 where five attempts a call would be the plain policy.
func BenchmarkOutage(b *testing.B) {
	for _, tc := range []struct {
		name     string
		noBudget bool
	}{
		{"budget", false},
		{"no-budget", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			base := &scriptBase{steps: []step{answer(503)}}
			tr := &Transport{Base: base, Retry: RetryPolicy{BaseDelay: time.Nanosecond}, DisableBudget: tc.noBudget}
			req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines", nil)
			if err != nil {
				b.Fatal(err)
			}
			calls := 0
			for b.Loop() {
				if _, err := tr.RoundTrip(req); err == nil {
					b.Fatal("a call succeeded during the outage")
				}
				calls++
			}
			b.ReportMetric(float64(base.attempts())/float64(calls), "attempts/call")
		})
	}
}
