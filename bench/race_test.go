//go:build race

package main

// raceEnabled reports whether the tests run with the race detector, which
// slows every goroutine too much for the labs that measure time.
const raceEnabled = true
