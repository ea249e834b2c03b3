package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWalkWrapClient(t *testing.T) {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	var out bytes.Buffer
	require.NoError(t, walkWrapClient(context.Background(), &out, srv.URL, srv.APIKey))
	got := out.String()
	assert.Contains(t, got, "0. Wrap the http.Client you already have (WrapClient)")
	assert.Regexp(t, `GET /pipelines: succeeded, [1-9][0-9]* bytes of JSON`, got)
	assert.Contains(t, got, "GET /pipelines/pipe_missing: errors.Is(err, neuracraft.ErrNotFound) is true; 404 Not Found, request ")
	assert.Len(t, srv.RequestsFor("GET /pipelines"), 1)
	assert.Len(t, srv.RequestsFor("GET /pipelines/{id}"), 1)
}

func TestWalkWrapClientFailures(t *testing.T) {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	t.Run("bad key", func(t *testing.T) {
		var out bytes.Buffer
		err := walkWrapClient(context.Background(), &out, srv.URL, "nc_wrong_SECRET")
		require.ErrorIs(t, err, neuracraft.ErrUnauthorized)
		assert.NotContains(t, err.Error()+out.String(), "nc_wrong_SECRET")
	})

	t.Run("a 503 on a GET is safe to send again later", func(t *testing.T) {
		busy := neuracrafttest.NewServer()
		defer busy.Close()
		// A Retry-After longer than the Transport waits (60 s): it returns
		// the 503 at once, and the service's code decides.
		busy.Fail("GET /pipelines", 1, neuracrafttest.Error(503, "service_unavailable", "maintenance").
			WithHeader("Retry-After", "120"))
		var out bytes.Buffer
		err := walkWrapClient(context.Background(), &out, busy.URL, busy.APIKey)
		require.ErrorIs(t, err, neuracraft.ErrUnavailable)
		assert.True(t, strings.HasPrefix(err.Error(), "neuracraft busy, try again later: "), err.Error())
		assert.Len(t, busy.RequestsFor("GET /pipelines"), 1)
	})
}

// TestRunWalksWrapClientFirst checks that the walk-through shows the
// WrapClient path before the JSON client's steps.
func TestRunWalksWrapClientFirst(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, func(string) string { return "" }))
	got := out.String()
	wrap, json := strings.Index(got, "0. Wrap the http.Client"), strings.Index(got, "1. Create a pipeline")
	require.NotEqual(t, -1, wrap)
	require.NotEqual(t, -1, json)
	assert.Less(t, wrap, json)
}
