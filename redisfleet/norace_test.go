//go:build !race

package redisfleet

// raceEnabled: see race_test.go.
const raceEnabled = false
