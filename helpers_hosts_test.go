// Helpers for the tests of the per-host state (hosts.go, breaker.go,
// cooldown.go, pace.go): a Transport's default host configuration, hosts
// put in a table by hand, and the check that a probe is done.

package neuracraft

import (
	"testing"
	"time"
)

// defaultHostConfig is the hostConfig of a Transport with the defaults.
func defaultHostConfig() *hostConfig {
	return &(&Transport{}).tableForUpdate().cfg
}

func assertClosed(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	default:
		t.Error("channel not closed")
	}
}

// held is holdOrAddAt's state, for the tests that look at nothing else.
func held(s *hostState, _ []lostState) *hostState { return s }

// addFailing gives host an entry in h that stays after its call ends: a
// call holds it, fails once (a token taken) and ends, at now.
func addFailing(h *hostTable, host string, now time.Time) *hostState {
	s := held(h.holdOrAddAt(host, now))
	s.failed(true)
	h.releaseAt(s, now)
	return s
}
