package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("REDIS_ADDR") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not on PATH")
		}
		t.Skip("redis-server is not on PATH (apt-get install redis-server), and REDIS_ADDR is not set")
	}
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"replica 1: 200 OK at 1", "replica 2: 200 OK at 1", "replica 3: 200 OK at 1",
		"NeuraCraft saw 4 requests, 1 of them answered 429"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
