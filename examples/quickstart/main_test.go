package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunWithFakeServer(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, func(string) string { return "" }))
	got := out.String()
	for _, want := range []string{
		"talking to a fake NeuraCraft",
		"201 Created: pipeline pipe_",
		"errors.Is(err, neuracraft.ErrNotFound) is true; quote request ",
		"what to do: Verify resource ID and URL path.",
		`msg="neuracraft: retrying"`,
		`cause="429 Too Many Requests"`,
		"IsPlugin: true, code 8102 PDF Export Failed, retryable: false",
		"5. Start a run and wait for its end (StartRun, WaitRun)\n   started run run_",
		": queued\n   run run_",
		`: completed, output {"pages":3}`,
		": failed: 8102 PDF Export Failed: PDF Export Plugin: Failed to generate document due to invalid template. (plugin pdf-export-1, request ",
		"ErrRunFailed: true, Code(8102): true, ErrPlugin: true, ErrNotFound: false, retryable: false",
		"failed plugin: pdf-export-1; quote request ",
		"Done.",
	} {
		assert.Contains(t, got, want)
	}
	assert.Regexp(t, `\n   neuracraft: run run_[0-9a-f]{12}: failed: `, got, "the run error, on one line")
}

func TestRunAgainstConfiguredServer(t *testing.T) {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	srv.ScriptRuns("*", neuracrafttest.RunCompleted(map[string]int{"rows": 7})) // no polls to wait for
	env := map[string]string{"NEURACRAFT_BASE_URL": srv.URL, "NEURACRAFT_API_KEY": srv.APIKey}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, func(k string) string { return env[k] }))
	got := out.String()
	assert.Contains(t, got, "Talking to "+srv.URL)
	assert.Contains(t, got, "skipped against a real one")
	assert.NotContains(t, got, "retrying")
	assert.Len(t, srv.RequestsFor("POST /pipelines"), 1)
	assert.Regexp(t, `run run_[0-9a-f]{12}: completed, output \{"rows":7\}`, got)
	assert.NotContains(t, got, "6. A run that fails")
}

func TestRunFailsOnBadCredentials(t *testing.T) {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	env := map[string]string{"NEURACRAFT_BASE_URL": srv.URL, "NEURACRAFT_API_KEY": "nc_wrong_SECRET"}
	var out bytes.Buffer
	err := run(context.Background(), &out, func(k string) string { return env[k] })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401 Unauthorized")
	assert.NotContains(t, err.Error()+out.String(), "nc_wrong_SECRET")
}
