package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Regexp(t, regexp.MustCompile(`^GET /pipelines: 200 OK over HTTP/2.0
GET /pipelines after an HTTP/2 stream reset: 200 OK, 3 requests received
POST /pipelines: forbidden, reason insufficient_scope
level=ERROR msg="create pipeline failed" err.status=403 err.code=403 err.reason=insufficient_scope err.message="The credential lacks the required scope pipeline:write" err.request_id=[0-9a-f]{32} err.attempts=1 err.method=POST err.url=https://127.0.0.1:[0-9]+/v1/pipelines
with a wrong secret: token endpoint says invalid_client \(retryable: false\)
$`), out.String())
	assert.NotContains(t, out.String(), "nc_client_secret_")
	assert.NotContains(t, out.String(), "nc_oauth_")
}
