package main

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("REDIS_ADDR") == "" {
		require.NotEqual(t, "true", os.Getenv("CI"), "redis-server is not on PATH") // in CI, a failure rather than a skip
		t.Skip("redis-server is not on PATH (apt-get install redis-server), and REDIS_ADDR is not set")
	}
	var out bytes.Buffer
	require.NoError(t, run(&out))
	got := out.String()
	for _, want := range []string{"replica 1: 200 OK at 1", "replica 2: 200 OK at 1", "replica 3: 200 OK at 1",
		"NeuraCraft saw 4 requests, 1 of them answered 429"} {
		assert.Contains(t, got, want, "output lacks %q", want)
	}
}
