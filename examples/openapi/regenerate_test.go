package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGeneratedCodeIsCurrent runs the //go:generate lines of generate.go
// (the generators at their pinned versions, through the module proxy or
// its cache) on a copy of their inputs in a temporary directory, and
// checks that they reproduce the committed code byte for byte.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("generate.go")
	require.NoError(t, err)
	var commands [][]string
	for line := range strings.SplitSeq(string(src), "\n") {
		if args, ok := strings.CutPrefix(line, "//go:generate "); ok {
			commands = append(commands, strings.Fields(args))
		}
	}
	require.Len(t, commands, 2, "one line per generator")

	dir := t.TempDir()
	inputs, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	configs, err := filepath.Glob("*client/*.y*ml")
	require.NoError(t, err)
	for _, name := range append(inputs, configs...) {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	for _, args := range commands {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s:\n%s", strings.Join(args, " "), out)
	}

	committed := generatedFiles(t, ".")
	regenerated := generatedFiles(t, dir)
	require.Equal(t, committed, regenerated, "the generated files")
	for _, name := range committed {
		want, err := os.ReadFile(name)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.True(t, string(want) == string(got), "%s differs from what go generate writes: run go generate", name)
	}
}

// generatedFiles lists the Go files of the client packages under dir,
// relative to dir.
func generatedFiles(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*client", "*.go"))
	require.NoError(t, err)
	for i, m := range matches {
		matches[i], err = filepath.Rel(dir, m)
		require.NoError(t, err)
	}
	slices.Sort(matches)
	require.NotEmpty(t, matches)
	return matches
}
