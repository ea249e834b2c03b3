// Tests of Retry-After (retry.go): parsing the header, on chosen values
// and fuzzed, carrying it on an APIError, and the Transport waiting for it.

package neuracraft

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 11, 26, 14, 0, 0, 0, time.UTC)
	const maxDur = time.Duration(math.MaxInt64)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"120", 2 * time.Minute},
		{" 45 ", 45 * time.Second},
		{"007", 7 * time.Second},
		{"-5", 0},
		{"+5", 0},
		{"1.5", 0},
		{"120abc", 0},
		{"soon", 0},
		{"9223372036", 9223372036 * time.Second}, // the longest whole-second Duration
		{"9223372037", maxDur},
		{"99999999999999999999999", maxDur},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Wednesday, 26-Nov-25 14:01:30 GMT", 90 * time.Second}, // RFC 850
		{"Wed Nov 26 14:01:30 2025", 90 * time.Second},          // ANSI C asctime
		{now.Format(http.TimeFormat), 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", maxDur},
		{"Wed, 26 Nov 2025 14:01:30", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, parseRetryAfter(tt.in, now), "parseRetryAfter(%q)", tt.in)
	}
}

func TestFromResponseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		header   string
		min, max time.Duration
	}{
		{"120", 120 * time.Second, 120 * time.Second},
		{now.Add(time.Hour).UTC().Format(http.TimeFormat), time.Hour - time.Minute, time.Hour},
		{now.Add(-time.Hour).UTC().Format(http.TimeFormat), 0, 0},
		{"-30", 0, 0},
		{"in a minute", 0, 0},
		{"99999999999999999999", math.MaxInt64, math.MaxInt64},
	}
	for _, tt := range tests {
		apiErr := apiErrorFor(t, 429, `{"error":{"code":"rate_limited","message":"Rate limit exceeded."}}`, "Retry-After", tt.header)
		require.GreaterOrEqual(t, apiErr.RetryAfter, tt.min, "Retry-After %q: RetryAfter = %v, want %v to %v", tt.header, apiErr.RetryAfter, tt.min, tt.max)
		assert.LessOrEqual(t, apiErr.RetryAfter, tt.max, "Retry-After %q: RetryAfter = %v, want %v to %v", tt.header, apiErr.RetryAfter, tt.min, tt.max)
	}
	assert.Zero(t, apiErrorFor(t, 429, "").RetryAfter, "without Retry-After: RetryAfter")
}

func TestTransportRetryAfter(t *testing.T) {
	future := func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name        string
		retryAfter  func() string
		wantElapsed time.Duration
		wantTries   int
	}{
		{"seconds", func() string { return "2" }, 2 * time.Second, 2},
		{"HTTP-date", future, 3 * time.Second, 2},
		{"garbage falls back to backoff", func() string { return "soon" }, 250 * time.Millisecond, 2},
		{"negative falls back to backoff", func() string { return "-5" }, 250 * time.Millisecond, 2},
		{"beyond MaxRetryAfter is returned at once", func() string { return "120" }, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &scriptBase{steps: []step{answer(429, "Retry-After", tc.retryAfter()), answer(200)}}
				tr := &Transport{Base: base, rand: half, DisableCooldown: true}
				start := time.Now()
				_, err := tr.RoundTrip(newReq(t, context.Background(), "POST", ""))
				assert.Equal(t, tc.wantElapsed, time.Since(start))
				assert.Equal(t, tc.wantTries, base.attempts())
				if tc.wantTries == 1 {
					var apiErr *APIError
					require.ErrorAs(t, err, &apiErr)
					assert.Equal(t, 120*time.Second, apiErr.RetryAfter)
				} else {
					require.NoError(t, err)
				}
			})
		})
	}
}

// FuzzParseRetryAfter checks that no Retry-After value gives a negative
// wait, and that delay-seconds do not depend on the clock.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 11, 26, 14, 0, 0, 0, time.UTC).Unix()
	for _, v := range []string{"", "0", "120", " 45 ", "-5", "+5", "1.5", "1e3", "soon",
		"9223372036", "9223372037", "99999999999999999999",
		"Wed, 26 Nov 2025 14:01:30 GMT", "Wednesday, 26-Nov-25 14:01:30 GMT", "Wed Nov 26 14:01:30 2025",
		"Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(v, now)
	}
	f.Add("Mon, 01 Jan 0001 00:00:00 GMT", int64(1<<62))
	f.Fuzz(func(t *testing.T, v string, unix int64) {
		at := time.Unix(unix, 0)
		d := parseRetryAfter(v, at)
		require.False(t, d < 0, "parseRetryAfter(%q, %v) = %v, negative", v, at, d)
		if s := strings.TrimSpace(v); s != "" && strings.Trim(s, "0123456789") == "" {
			require.Equal(t, d, parseRetryAfter(v, at.Add(time.Hour)), "parseRetryAfter(%q)", v)
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n < 1<<33 {
				require.Equal(t, time.Duration(n)*time.Second, d, "parseRetryAfter(%q)", v)
			}
		}
	})
}
