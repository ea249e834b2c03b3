package limits

import "time"

// The constants of the adaptive pace after pushback, which the root
// package applies in one process (pace.go, where each is explained) and
// redisfleet hands to its Lua scripts, so that a fleet paces by the same
// numbers (a test of each pins both to one schedule,
// testdata/pace_schedules.json at the repository's root).
const (
	// PaceStartGap is the gap of the first requests after the cooldown
	// that engaged the pace.
	PaceStartGap = 50 * time.Millisecond
	// PaceStartWins is how many successes in a row at a gap shorten it by
	// a fifth in the slow start.
	PaceStartWins = 2
	// PaceStartEnd ends the slow start.
	PaceStartEnd = PaceStartGap / 8
	// PaceHold is how long after pushback the pace does not speed up.
	PaceHold = 10 * time.Second
	// PaceProbeWins is how many successes in a row at a gap shorten it by
	// a twentieth past the hold.
	PaceProbeWins = 8
	// PaceQuiet is how long the pace lasts after the last pushback.
	PaceQuiet = 30 * time.Second
	// PaceClimb is how many requests a second the linear slow start gains
	// per second of successes, and PaceCut what slows its pace after
	// pushback: the gap that failed grows by 1/PaceCut.
	PaceClimb = 18
	PaceCut   = 5
	// PaceLinStartGap is the gap the linear slow start starts from.
	PaceLinStartGap = 40 * time.Millisecond
	// PaceMinBank is the least count of the first wave's successes that
	// makes a burst, and the slow start linear.
	PaceMinBank = 3
	// PaceMinGap and PaceMaxGap bound the learnt pace: below the first it
	// ends.
	PaceMinGap = time.Millisecond
	PaceMaxGap = time.Second
)
