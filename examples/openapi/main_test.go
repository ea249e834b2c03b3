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
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Regexp(t, regexp.MustCompile(`^oapi-codegen: 404, neuracraft: GET /v1/pipelines/pipe_missing: 404 Not Found: Resource not found \(request [0-9a-f]{32}\)
ogen: created invoices
ogen: 500, neuracraft: POST /v1/pipelines/pipe_[0-9a-f]+/run: 8102 Plugin Error: PDF Export Plugin: invalid template\. \(HTTP 500, request [0-9a-f]{32}\)
$`), out.String())
	assert.NotContains(t, out.String(), "nc_test_", "no API key in the output")
}
