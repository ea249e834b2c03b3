// Helpers that make time exact in the tests of package neuracraft: the
// instants the explicit-time tests name (t0, at), and the jitter sources
// that make a Transport's backoff predictable (half, zero).

package neuracraft

import (
	"time"
)

// half and zero are jitter sources for Transport.rand that make the jitter
// predictable.
func half() float64 { return 0.5 }

func zero() float64 { return 0 }

// t0 is the instant the explicit-time tests count from.
var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }
