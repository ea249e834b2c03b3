// Tests of the pace an Observer is told while a Coordinator paces a host:
// the fleet's, on change only, and its end.

package neuracraft

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestObserverFleetPace: a call let go at a fleet turn tells the fleet's
// pace when it differs from the one last told; while the fleet paces the
// host, the Transport's own pace, engaged by a 429 meanwhile, is no news;
// once the fleet no longer holds the host, its own pace is told, and then
// its end.
func TestObserverFleetPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		fleet.setPace(40 * time.Millisecond)
		fleet.Announce(apiHost, Pause{RetryAfter: time.Second, Gap: 10 * time.Millisecond, Cause: 429}) // by another member
		base := &scriptBase{steps: []step{answer(200), answer(200), answer(200), answer(429, "Retry-After", "1"), answer(200)}}
		tr := &Transport{Base: base, Coordinator: fleet, rand: zero}
		rec := &recorder{t: t, tr: tr}
		tr.Observer = rec
		call := func(what string, want ...string) {
			t.Helper()
			rec.mu.Lock()
			rec.events = nil
			rec.mu.Unlock()
			require.NoError(t, get(t, tr, context.Background()), what)
			assert.Equal(t, want, kinds(rec.lines(), "wait", "pace", "retry"), what)
		}

		call("held, let go at the fleet's pace (at 1 s)",
			"wait.started fleet 1s", "wait.ended fleet 1s", "pace.changed 25 30s")
		call("the same pace: nothing new",
			"wait.started fleet 40ms", "wait.ended fleet 40ms")
		fleet.setPace(100 * time.Millisecond)
		call("the fleet slows down",
			"wait.started fleet 40ms", "wait.ended fleet 40ms", "pace.changed 10 30s")
		call("a 429 engages the Transport's own pace (20/s), but the requests go at the fleet's: nothing new",
			"wait.started fleet 100ms", "wait.ended fleet 100ms", "retry.decided 1 429 1s",
			"wait.started fleet 1s", "wait.ended fleet 1s")

		time.Sleep(16 * time.Second) // 18.18 s: half of the 30 s told at 1.08 s is gone
		call("the same pace, told again for 30 s",
			"wait.started fleet 0s", "wait.ended fleet 0s", "pace.changed 10 30s")

		fleet.setPace(0)
		time.Sleep(time.Second) // 19.18 s: the fleet's queue has drained, and it paces no more
		call("the fleet no longer holds the host: the Transport's own pace, till 30 s after its 429 at 1.18 s",
			"pace.changed 20 12s")

		time.Sleep(12 * time.Second) // 31.18 s
		call("the own pace is over", "pace.changed 0 0s")
		assert.Zero(t, tr.table().len(), "the host is forgotten")
	})
}

// TestObserverFleetPaceForgotten: a host whose fleet pace was told, and
// that the full host table drops, is reported no longer paced by the
// call that made room.
func TestObserverFleetPaceForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fleet := &fakeFleet{}
		fleet.setPace(40 * time.Millisecond)
		fleet.Announce(apiHost, Pause{RetryAfter: time.Second, Gap: 10 * time.Millisecond, Cause: 429})
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Host == apiHost {
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
			}
			return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
		})
		tr := &Transport{Base: base, Coordinator: fleet, Retry: RetryPolicy{MaxAttempts: 1}}
		rec := &recorder{t: t, tr: tr}
		tr.Observer = rec
		require.NoError(t, get(t, tr, context.Background()))
		require.Contains(t, rec.lines(), "pace.changed 25 30s")

		h := tr.table()
		now := time.Now()
		for i := range maxHosts - 1 {
			addFailing(h, fmt.Sprintf("h%d.example", i), now)
		}
		rec.mu.Lock()
		rec.events = nil
		rec.mu.Unlock()
		req, err := http.NewRequest("GET", "https://room.example/v1", nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		require.Error(t, err)
		assert.Equal(t, []string{
			"attempt.started 1 @room.example", "attempt.ended 1 503 @room.example",
			"pace.changed 0 0s", "retry.stopped 1 503 attempts @room.example",
		}, rec.lines())
		assert.Nil(t, h.lookup(apiHost))
	})
}
