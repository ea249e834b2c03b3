// Package limits holds the timing limits that the root package and the
// redisfleet module share, so that each is written once. It is internal:
// callers leave the fields that these limits default empty, and read the
// values in the documentation of those fields.
package limits

import "time"

// DefaultMaxRetryAfter is the longest Retry-After honoured by default:
// the default of RetryPolicy.MaxRetryAfter (a longer pause is returned to
// the caller, not slept), which also bounds every wait that a fleet's
// Coordinator asks for, and WaitRun's cap on a poll's Retry-After.
const DefaultMaxRetryAfter = 60 * time.Second

// MaxReleaseGap is the longest time between two requests let go, in the
// order they came, after a host's cooldown ends, in one process or across
// a redisfleet fleet whose gap is not known yet (the gap is a hundredth
// of the cooldown, when that is shorter). A long pause does not mean the
// server can take less once it is over: 10 ms lets through about one
// request more than the server's limit for each 10 ms of round trip,
// before the first 429 of the next cooldown comes back.
const MaxReleaseGap = 10 * time.Millisecond
