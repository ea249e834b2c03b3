// Tests that Goroutines tells goroutines apart by identity, not by count.

package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGoroutinesCatchesASwap checks the case a count misses: a goroutine
// running at the start ends while the test starts another one and leaves
// it running. The count is back to where it was; the new goroutine is
// still reported, with its stack.
func TestGoroutinesCatchesASwap(t *testing.T) {
	before := goroutines()
	endOld, stopLeak := make(chan struct{}), make(chan struct{})
	defer close(stopLeak)
	go waitOld(endOld)
	var oldID uint64
	require.True(t, Until(Timeout, func() bool {
		for id, stack := range goroutines() {
			if _, seen := before[id]; !seen && strings.Contains(stack, "leakcheck.waitOld") {
				oldID = id
				return true
			}
		}
		return false
	}), "the old goroutine never showed up")

	base := goroutines() // the start of the "test": the old goroutine runs
	baseCount := runtime.NumGoroutine()
	close(endOld)
	go leaky(stopLeak)
	require.True(t, Until(Timeout, func() bool { _, alive := goroutines()[oldID]; return !alive }),
		"the old goroutine never ended")
	assert.LessOrEqual(t, runtime.NumGoroutine(), baseCount, "a count would see nothing wrong")

	var f fakeTB
	check(&f, base, 50*time.Millisecond)
	require.Len(t, f.errors, 1, "the swapped-in goroutine is reported")
	assert.Contains(t, f.errors[0], "leakcheck: 1 goroutine(s) started during the test still running")
	assert.Contains(t, f.errors[0], "leakcheck.leaky", "the report shows the leaked goroutine's stack")
	assert.NotContains(t, f.errors[0], "leakcheck.waitOld", "only goroutines started since the base")
}

// TestGoroutinesIgnoresOlderOnes checks that a goroutine running before
// the check began, and still running after, is not a leak of the test.
func TestGoroutinesIgnoresOlderOnes(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go leaky(stop)
	var f fakeTB
	Goroutines(&f) // the goroutine above is part of the base
	f.runCleanups()
	assert.Empty(t, f.errors)
}

// TestGoroutineIDs checks the parsing of runtime.Stack's output: the
// calling goroutine is listed with its own stack.
func TestGoroutineIDs(t *testing.T) {
	all := goroutines()
	require.NotEmpty(t, all)
	found := false
	for id, stack := range all {
		assert.True(t, strings.HasPrefix(stack, "goroutine "), "stack of %d: %q", id, stack)
		if strings.Contains(stack, "leakcheck.TestGoroutineIDs") {
			found = true
		}
	}
	assert.True(t, found, "the test's own goroutine is listed")
}

func waitOld(end chan struct{}) { <-end }
