// Tests of the rate-limit header fields (ratelimit.go): parsing each form,
// on chosen values and fuzzed, the quota they state pacing a Transport, and
// what the look for them costs.

package neuracraft

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseQuota(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	s := time.Second
	for _, tc := range []struct {
		name   string
		header []string // key, value, ...
		want   quota
		ok     bool
	}{
		{name: "no field", header: []string{"Retry-After", "1"}},
		{name: "draft 08 on, with its policy",
			header: []string{"RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"default";q=100;w=60`},
			want:   quota{remaining: 50, reset: 30 * s, limit: 100}, ok: true},
		{name: "draft 08 on, the policy of another name",
			header: []string{"RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"other";q=100;w=60`},
			want:   quota{remaining: 50, reset: 30 * s}, ok: true},
		{name: "draft 08 on, a token as name and a partition key",
			header: []string{"RateLimit", `default;r=5;t=2;pk=:dXNlcjE=:`},
			want:   quota{remaining: 5, reset: 2 * s}, ok: true},
		{name: "the tightest of several quotas",
			header: []string{"RateLimit", `"burst";r=5;t=1, "daily";r=1000;t=3600`,
				"RateLimit-Policy", `"burst";q=10;w=1, "daily";q=5000;w=86400`},
			want: quota{remaining: 1000, reset: 3600 * s, limit: 5000}, ok: true},
		{name: "none left",
			header: []string{"RateLimit", `"default";r=0;t=5`},
			want:   quota{remaining: 0, reset: 5 * s}, ok: true},
		{name: "none left is the tightest",
			header: []string{"RateLimit", `"a";r=10;t=1, "b";r=0;t=1`},
			want:   quota{remaining: 0, reset: s}, ok: true},
		{name: "no reset", header: []string{"RateLimit", `"default";r=7`}, want: quota{remaining: 7}, ok: true},
		{name: "draft 07 dictionary",
			header: []string{"RateLimit", "limit=100, remaining=50, reset=5"},
			want:   quota{remaining: 50, reset: 5 * s, limit: 100}, ok: true},
		{name: "drafts to 06",
			header: []string{"RateLimit-Remaining", "5", "RateLimit-Reset", "10", "RateLimit-Limit", "100, 100;w=60"},
			want:   quota{remaining: 5, reset: 10 * s, limit: 100}, ok: true},
		{name: "X-RateLimit in delta-seconds",
			header: []string{"X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "1.5", "X-RateLimit-Limit", "60"},
			want:   quota{remaining: 3, reset: 1500 * time.Millisecond, limit: 60}, ok: true},
		{name: "X-RateLimit-Reset in Unix seconds",
			header: []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000030"},
			want:   quota{remaining: 0, reset: 30 * s}, ok: true},
		{name: "X-RateLimit-Reset in Unix milliseconds",
			header: []string{"X-RateLimit-Remaining", "2", "X-RateLimit-Reset", "1700000000250"},
			want:   quota{remaining: 2, reset: 250 * time.Millisecond}, ok: true},
		{name: "a malformed RateLimit falls back to X-RateLimit",
			header: []string{"RateLimit", `"default";r=`, "X-RateLimit-Remaining", "4"},
			want:   quota{remaining: 4}, ok: true},
		{name: "a limit that is not a number is left out",
			header: []string{"X-RateLimit-Remaining", "4", "X-RateLimit-Limit", "lots"},
			want:   quota{remaining: 4}, ok: true},

		// What a lying or broken server sends.
		{name: "garbage", header: []string{"RateLimit", "???", "X-RateLimit-Remaining", "many"}},
		{name: "negative remaining", header: []string{"X-RateLimit-Remaining", "-1", "X-RateLimit-Reset", "5"}},
		{name: "negative reset", header: []string{"X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "-5"}},
		{name: "negative r", header: []string{"RateLimit", `"default";r=-1;t=5`}},
		{name: "huge remaining", header: []string{"X-RateLimit-Remaining", "99999999999999999999"}},
		{name: "remaining of 16 digits", header: []string{"X-RateLimit-Remaining", "1000000000000000"}},
		{name: "a float remaining", header: []string{"X-RateLimit-Remaining", "1.5"}},
		{name: "reset in the past", header: []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1699999990"}},
		{name: "reset of zero", header: []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "0"}},
		{name: "reset of more than 31 years", header: []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "1000000001"}},
		{name: "t of more than 31 years", header: []string{"RateLimit", `"default";r=0;t=1000000001`}},
		{name: "reset with a bad fraction", header: []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1.5s"}},
		{name: "no r", header: []string{"RateLimit", `"default";t=5`}},
		{name: "r not an integer", header: []string{"RateLimit", `"default";r=1.5;t=5`}},
		{name: "an unterminated string", header: []string{"RateLimit", `"default;r=1;t=5`}},
		{name: "a trailing comma", header: []string{"RateLimit", `"default";r=1;t=5,`}},
		{name: "an inner list", header: []string{"RateLimit", `("a" "b");r=1;t=5`}},
		{name: "a field too long", header: []string{"RateLimit", `"default";r=1;t=5,` + strings.Repeat(` "x";r=1,`, 200) + ` "y";r=1`}},
		{name: "too many members", header: []string{"RateLimit", strings.TrimSuffix(strings.Repeat(`"x";r=1, `, 17), ", ")}},
		{name: "too many parameters", header: []string{"RateLimit", `"x";r=1` + strings.Repeat(";a=1", 16)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i < len(tc.header); i += 2 {
				h.Add(tc.header[i], tc.header[i+1])
			}
			got, ok := parseQuota(h, now)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestQuotaStated(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"RateLimit": true, "RateLimit-Remaining": true, "X-RateLimit-Remaining": true,
		"RateLimit-Policy": false, "X-RateLimit-Limit": false, "Retry-After": false,
	} {
		assert.Equal(t, want, quotaStated(http.Header{http.CanonicalHeaderKey(key): {"1"}}), key)
	}
	assert.False(t, quotaStated(nil))
}

// FuzzParseQuota feeds the rate-limit fields anything: parseQuota must
// not panic, what it refuses is the zero quota, and what it accepts is
// never negative.
func FuzzParseQuota(f *testing.F) {
	for _, seed := range [][4]string{
		{`"default";r=50;t=30`, `"default";q=100;w=60`, "", ""},
		{"limit=100, remaining=50, reset=5", "", "", ""},
		{`"a";r=10;t=1, "b";r=0;t=1`, "", "", ""},
		{"", "", "3", "1.5"},
		{"", "", "0", "1700000030"},
		{"", "", "2", "1700000000250"},
		{`"x";r=1;pk=:YWJj:;q=?1`, "", "-1", "-5"},
		{`("a" "b");r=1`, "garbage", "99999999999999999999", "1e9"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, rateLimit, policy, remaining, reset string) {
		h := http.Header{}
		for k, v := range map[string]string{"RateLimit": rateLimit, "RateLimit-Policy": policy,
			"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset, "RateLimit-Remaining": remaining,
			"RateLimit-Reset": reset} {
			if v != "" {
				h.Set(k, v)
			}
		}
		q, ok := parseQuota(h, now)
		if !ok {
			if q != (quota{}) {
				t.Fatalf("not ok, but %+v", q)
			}
			return
		}
		if q.remaining < 0 || q.reset < 0 || q.limit < 0 {
			t.Fatalf("negative quota %+v from %q", q, h)
		}
	})
}

// TestTransportQuota: the quota that a server's rate-limit fields state
// paces the requests to its host, and nothing a server says holds a
// request longer than MaxRetryAfter.
func TestTransportQuota(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		header []string      // of the first answer; the others have none
		max    time.Duration // RetryPolicy.MaxRetryAfter
		want   []time.Duration
	}{
		{name: "none left: every request waits for the reset, as after a Retry-After",
			header: []string{"RateLimit", `"default";r=0;t=2`, "RateLimit-Policy", `"default";q=100;w=2`},
			want:   []time.Duration{0, 2000 * ms, 2010 * ms, 2020 * ms}},
		{name: "few left: spread over the time to the reset, then no pace",
			header: []string{"X-RateLimit-Remaining", "2", "X-RateLimit-Reset", "1", "X-RateLimit-Limit", "100"},
			want:   []time.Duration{0, 0, 500 * ms, 1000 * ms}},
		{name: "few left, no limit stated: 10 or fewer",
			header: []string{"RateLimit-Remaining", "10", "RateLimit-Reset", "1"},
			want:   []time.Duration{0, 0, 100 * ms, 200 * ms}},
		{name: "plenty left: no pace", header: []string{"RateLimit", `"default";r=26;t=1`, "RateLimit-Policy", `"default";q=100;w=1`},
			want: []time.Duration{0, 0, 0, 0}},
		{name: "a reset beyond MaxRetryAfter is not waited for",
			header: []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "3600"}, want: []time.Duration{0, 0, 0, 0}},
		{name: "nor one beyond a shorter MaxRetryAfter", max: 10 * time.Second,
			header: []string{"RateLimit", `"default";r=0;t=11`}, want: []time.Duration{0, 0, 0, 0}},
		{name: "a reset at MaxRetryAfter is", max: 10 * time.Second,
			header: []string{"RateLimit", `"default";r=0;t=10`}, want: []time.Duration{0, 10 * time.Second, 10010 * ms, 10020 * ms}},
		{name: "one left at MaxRetryAfter: the wait of one", max: 10 * time.Second,
			header: []string{"RateLimit", `"default";r=1;t=10`}, want: []time.Duration{0, 0, 10 * time.Second, 10 * time.Second}},
		{name: "garbage", header: []string{"RateLimit", `"default";r=0;t=-5`, "X-RateLimit-Remaining", "none"},
			want: []time.Duration{0, 0, 0, 0}},
		{name: "a reset in the past", header: []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1000000000"},
			want: []time.Duration{0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &scriptBase{steps: []step{answer(200, tc.header...), answer(200)}}
				tr := &Transport{Base: base, Retry: RetryPolicy{MaxRetryAfter: tc.max}}
				start := time.Now()
				for range len(tc.want) {
					require.NoError(t, get(t, tr, context.Background()))
				}
				var got []time.Duration
				for _, s := range base.log() {
					got = append(got, s.at.Sub(start))
				}
				assert.Equal(t, tc.want, got)
			})
		})
	}
	t.Run("a caller that cannot wait for the reset fails at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			base := &scriptBase{steps: []step{answer(200, "RateLimit", `"default";r=0;t=5`), answer(200)}}
			tr := &Transport{Base: base}
			require.NoError(t, get(t, tr, context.Background()))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := get(t, tr, ctx)
			var cd *CooldownError
			require.ErrorAs(t, err, &cd)
			assert.Equal(t, Code(429), cd.Cause)
			assert.Equal(t, 5*time.Second, cd.RetryAfter)
			assert.Equal(t, 1, base.attempts())
		})
	})
	t.Run("no field: no host entry", func(t *testing.T) {
		tr := &Transport{Base: &scriptBase{steps: []step{answer(200, "X-RateLimit-Limit", "100")}}}
		require.NoError(t, get(t, tr, context.Background()))
		assert.Nil(t, tr.table(), "nothing in trouble: nothing kept")
	})
}

// typicalHeader is the header of a typical success of the API, without
// quota fields.
func typicalHeader() http.Header {
	return http.Header{
		"Content-Type":   {"application/json"},
		"Content-Length": {"95"},
		"Date":           {"Mon, 07 Dec 2026 01:00:00 GMT"},
		"X-Request-Id":   {"req_0123456789ab"},
		"Vary":           {"Accept-Encoding"},
		"Cache-Control":  {"no-store"},
	}
}

// BenchmarkSuccessWithHeaders is TransportOverhead/caller-id with an
// answer that has a typical header: what the Transport adds to a success,
// the look for quota fields included. Compare with the code before them:
//
//	go test -run '^$' -bench SuccessWithHeaders -benchmem -count 10 .
func BenchmarkSuccessWithHeaders(b *testing.B) {
	resp := &http.Response{StatusCode: 200, Header: typicalHeader(), Body: http.NoBody}
	tr := &Transport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })}
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-Request-ID", "req_caller")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQuotaFields is what reading the quota fields costs: the look
// that every answer pays (absent), and the parse of each form.
func BenchmarkQuotaFields(b *testing.B) {
	now := time.Now()
	with := func(kv ...string) http.Header {
		h := typicalHeader()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"absent", typicalHeader()},
		{"draft", with("RateLimit", `"default";r=50;t=30`, "RateLimit-Policy", `"default";q=100;w=60`)},
		{"x-ratelimit", with("X-RateLimit-Remaining", "50", "X-RateLimit-Reset", "30", "X-RateLimit-Limit", "100")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if quotaStated(bc.h) {
					parseQuota(bc.h, now)
				}
			}
		})
	}
}
