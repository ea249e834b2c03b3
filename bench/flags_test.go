package main

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parse runs parseFlags and puts back the test binary's -test.benchtime,
// which parseFlags sets for testing.Benchmark.
func parse(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	bt := flag.Lookup("test.benchtime")
	require.NotNil(t, bt)
	saved := bt.Value.String()
	t.Cleanup(func() { _ = bt.Value.Set(saved) })
	return parseFlags(args)
}

func TestParseFlags(t *testing.T) {
	full, err := parse(t)
	require.NoError(t, err)
	quick, err := parse(t, "-quick")
	require.NoError(t, err)
	for _, tc := range []struct {
		name                string
		full, quick         any
		wantFull, wantQuick any
	}{
		{"success reps", full.successReps, quick.successReps, 20, 3},
		{"reps", full.reps, quick.reps, 3, 1},
		{"fast reps", full.fastReps, quick.fastReps, 7, 1},
		{"call timeout", full.callTimeout, quick.callTimeout, 30 * time.Second, 5 * time.Second},
		{"seq cycles", full.seqCycles, quick.seqCycles, 5, 2},
		{"storm calls", full.stormCalls, quick.stormCalls, 5, 2},
		{"upload size", full.uploadSize, quick.uploadSize, int64(100 << 20), int64(16 << 20)},
	} {
		assert.Equal(t, tc.wantFull, tc.full, "%s, full run", tc.name)
		assert.Equal(t, tc.wantQuick, tc.quick, "%s, -quick", tc.name)
	}

	// A flag given explicitly wins over -quick.
	cfg, err := parse(t, "-quick", "-call-timeout", "7s", "-upload-mib", "1", "-reps", "2")
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, cfg.callTimeout)
	assert.Equal(t, int64(1<<20), cfg.uploadSize)
	assert.Equal(t, 2, cfg.reps)
	assert.Equal(t, 5, cfg.fastReps)

	cfg, err = parse(t, "-only", "2, 5")
	require.NoError(t, err)
	assert.True(t, cfg.runs(2) && cfg.runs(5) && !cfg.runs(1))

	for _, bad := range [][]string{{"-only", "6"}, {"-only", "x"}, {"-seq-cycles", "0"}, {"extra"}} {
		_, err := parse(t, bad...)
		assert.Error(t, err, "%q", bad)
	}
}
