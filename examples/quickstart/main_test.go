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
		"202 Accepted: task run_",
		"run status: queued\n   run status: running\n   run status: succeeded\n",
		"Done.",
	} {
		assert.Contains(t, got, want)
	}
}

func TestRunAgainstConfiguredServer(t *testing.T) {
	pollInterval = 0
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	env := map[string]string{"NEURACRAFT_BASE_URL": srv.URL, "NEURACRAFT_API_KEY": srv.APIKey}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, func(k string) string { return env[k] }))
	got := out.String()
	assert.Contains(t, got, "Talking to "+srv.URL)
	assert.Contains(t, got, "skipped against a real one")
	assert.NotContains(t, got, "retrying")
	assert.Len(t, srv.RequestsFor("POST /pipelines"), 1)
	assert.Contains(t, got, "run status: succeeded")
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
