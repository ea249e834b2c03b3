package redisfleet

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
)

// FuzzApply feeds any message of the channel to a member: it never
// panics, and a cooldown it accepts holds no longer than maxPause, with a
// gap of at most maxGap, for a host that may go into Redis, with cause
// 429 or 503 and an epoch.
func FuzzApply(f *testing.F) {
	for _, seed := range []string{"1 1000000 10000 429 api.neuracraft.com", "7 2000000 5000 503 h:8080",
		"", "x", "1 2 3", "1 -1 0 429 h", "1 99999999999999999999 1 429 h", "1 1 99999999999 777 h", "1 1 1 429 bad{host}",
		"0 1 1 429 h", "-1 1 1 429 h"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		var reported int
		m := offline(Options{OnError: func(error) { reported++ }})
		now := time.Now()
		m.apply(payload, now)
		for h, e := range m.hosts {
			assert.True(t, validHost(h), "accepted host %q", h)
			assert.LessOrEqual(t, e.until.Sub(now), maxPause, "accepted %+v from %q: holds past maxPause", e, payload)
			assert.Positive(t, e.gap, "accepted %+v from %q: gap", e, payload)
			assert.LessOrEqual(t, e.gap, maxGap, "accepted %+v from %q: gap past maxGap", e, payload)
			assert.Positive(t, e.epoch, "accepted %+v from %q: epoch", e, payload)
			assert.Contains(t, []neuracraft.Code{429, 503}, e.cause, "accepted %+v from %q: cause", e, payload)
		}
		if len(m.hosts) == 0 {
			assert.NotZero(t, reported, "%q neither accepted nor reported", payload)
		}
	})
}

func TestValidHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"name", "api.neuracraft.com", true},
		{"IPv4 and port", "127.0.0.1:8080", true},
		{"IPv6 and port", "[::1]:443", true},
		{"empty", "", false},
		{"space", "a b", false},
		{"userinfo", "user@host", false},
		{"hash tag", "{tag}", false},
		{"newline", "h\n", false},
		{"too long", strings.Repeat("a", 301), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, validHost(tc.in), "validHost(%q)", tc.in)
		})
	}
}

// staticBase answers every request with the same 200.
type staticBase struct{}

func (staticBase) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

// TestFleetIdleCostsNoAllocation: while no cooldown is known, a call
// through a Transport with a Fleet allocates what one without does, and
// touches no Redis (this Fleet has none).
func TestFleetIdleCostsNoAllocation(t *testing.T) {
	req, err := http.NewRequestWithContext(context.Background(), "GET", "https://"+host+"/v1/pipelines", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-ID", "req_1")
	allocs := func(tr *neuracraft.Transport) float64 {
		return testing.AllocsPerRun(200, func() {
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
		})
	}
	f := offline(Options{})
	f.Announce("other.example", pauseOf(time.Minute, 429)) // another host cools down
	without := allocs(&neuracraft.Transport{Base: staticBase{}})
	with := allocs(&neuracraft.Transport{Base: staticBase{}, Coordinator: f})
	assert.Equal(t, without, with, "allocations per call with a Fleet (actual) and without (expected)")
}

// BenchmarkFleetIdle: a successful call through a Transport without a
// Coordinator, and with a Fleet that knows a cooldown of another host.
//
//	cd redisfleet && go test -run '^$' -bench FleetIdle -benchmem
func BenchmarkFleetIdle(b *testing.B) {
	f := offline(Options{})
	f.Announce("other.example", pauseOf(time.Hour, 429))
	for _, bc := range []struct {
		name string
		tr   *neuracraft.Transport
	}{
		{"without", &neuracraft.Transport{Base: staticBase{}}},
		{"fleet", &neuracraft.Transport{Base: staticBase{}, Coordinator: f}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, err := http.NewRequest("GET", "https://"+host+"/v1/pipelines", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := bc.tr.RoundTrip(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
				}
			})
		})
	}
}

// TestAnnounceNotSharedIsSentAgain: a member announces a cooldown once,
// however many of its calls meet it; an announcement that did not reach
// Redis does not count as shared, so the next one is sent instead of being
// taken for a repeat; one learnt from the fleet is not sent back.
func TestAnnounceNotSharedIsSentAgain(t *testing.T) {
	m := offline(Options{}) // every command fails: no Redis
	gap := 10 * time.Millisecond
	until := time.Now().Add(2 * time.Second)
	require.True(t, m.raise("h.example", state{until: until, gap: gap, cause: 429}, false),
		"a new cooldown is worth announcing")
	assert.False(t, m.raise("h.example", state{until: until.Add(time.Millisecond), gap: gap, cause: 429}, false),
		"a cooldown being announced is not announced again by the member's other calls")
	m.settleAnnounce("h.example", until, false) // it did not reach Redis
	assert.True(t, m.raise("h.example", state{until: until.Add(2 * time.Millisecond), gap: gap, cause: 429}, false),
		"a cooldown that never reached Redis must be announced again")
	m.Announce("h.example", neuracraft.Pause{RetryAfter: 3 * time.Second, Gap: gap, Cause: 429}) // fails: no Redis
	assert.True(t, m.raise("h.example", state{until: until.Add(time.Second + time.Millisecond), gap: gap, cause: 429}, false),
		"after a failed Announce, the next announcement must be sent")
	m.raise("h.example", state{until: until.Add(5 * time.Second), gap: gap, cause: 429}, true) // from the fleet
	assert.False(t, m.raise("h.example", state{until: until.Add(5*time.Second + time.Millisecond), gap: gap, cause: 429}, false),
		"a cooldown the fleet already holds is not announced again")
	m.settleAnnounce("h.example", until.Add(8*time.Second), true)
	assert.False(t, m.raise("h.example", state{until: until.Add(8 * time.Second), gap: gap, cause: 429}, false),
		"a cooldown written to Redis is not announced again")
}
