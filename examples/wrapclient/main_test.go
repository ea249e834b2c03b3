package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, func(string) string { return "" }))
	assert.Regexp(t, regexp.MustCompile(`^pipe_does_not_exist: the 404 became the service's own error: no such pipeline
and the NeuraCraft detail is still there: 404 Not Found, request [0-9a-f]{32}
level=ERROR msg="get pipeline failed" err.status=404 err.code=404 err.reason=not_found err.message="Resource not found" err.request_id=[0-9a-f]{32} err.attempts=1 err.method=GET err.url=http://127.0.0.1:[0-9]+/v1/pipelines/pipe_does_not_exist err.text="no such pipeline: Get \\"http://127.0.0.1:[0-9]+/v1/pipelines/pipe_does_not_exist\\": neuracraft: GET /v1/pipelines/pipe_does_not_exist: 404 Not Found: Resource not found \(request [0-9a-f]{32}\)"
$`), out.String())
}

func TestRunAgainstConfiguredServer(t *testing.T) {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	env := map[string]string{"NEURACRAFT_BASE_URL": srv.URL, "NEURACRAFT_API_KEY": srv.APIKey}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, func(k string) string { return env[k] }))
	reqs := srv.RequestsFor("GET /pipelines/{id}")
	require.Len(t, reqs, 1)
	assert.Equal(t, "/v1/pipelines/pipe_does_not_exist", reqs[0].Path)
}
