//go:build race

package redisfleet

// raceEnabled: the race detector slows every goroutine down several times
// over, so timing targets get the scheduling margin (see faultMargin).
const raceEnabled = true
