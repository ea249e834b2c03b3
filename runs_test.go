// Tests of runs (runs.go): the calls StartRun, GetRun and CancelRun on the
// fake server, Run.Done and the reading of a run's status.
// runs_wait_test.go holds WaitRun, rundecode_test.go the decoding and
// runerror_test.go RunError.

package neuracraft

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

func TestStartRun(t *testing.T) {
	t.Parallel()
	srv, c, pid := newRunServer(t)

	run, err := c.StartRun(t.Context(), pid, map[string]any{"invoice": "inv_42"})
	require.NoError(t, err)
	require.Regexp(t, `^run_[0-9a-f]{12}$`, run.ID)
	require.Empty(t, cmp.Diff(&Run{ID: run.ID, PipelineID: pid, Status: "queued", MonitorURL: srv.URL + "/runs/" + run.ID}, run))

	_, err = c.StartRun(t.Context(), pid, nil)
	require.NoError(t, err)
	reqs := srv.RequestsFor("POST /pipelines/{id}/run")
	require.Len(t, reqs, 2)
	require.JSONEq(t, `{"invoice":"inv_42"}`, string(reqs[0].Body), "input is the body as it is")
	require.Empty(t, reqs[1].Body, "nil input sends no body")
	require.Empty(t, reqs[1].Header.Get("Content-Type"))

	_, err = c.StartRun(t.Context(), "pipe_missing", nil)
	require.ErrorIs(t, err, ErrNotFound)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
}

func TestStartRunWithoutRunID(t *testing.T) {
	t.Parallel()
	base := &runBase{answers: []runAnswer{{status: 202, body: `{"status":"queued"}`}}}
	_, err := base.client(nil).StartRun(t.Context(), "pipe_1", nil)
	require.EqualError(t, err, "neuracraft: POST /v1/pipelines/pipe_1/run: 202 Accepted: the answer names no run (request req_1)")

	// A task_id is taken when there is no run ID.
	base = &runBase{answers: []runAnswer{{status: 202, body: `{"task_id":"task_9","status":"queued"}`}}}
	run, err := base.client(nil).StartRun(t.Context(), "pipe_1", nil)
	require.NoError(t, err)
	require.Equal(t, "task_9", run.ID)
}

func TestRunCallsRefuseInvalidIDs(t *testing.T) {
	t.Parallel()
	srv, c, _ := newRunServer(t)
	before := len(srv.Requests())
	for _, id := range []string{"", ".", ".."} {
		_, err := c.StartRun(t.Context(), id, nil)
		require.EqualError(t, err, fmt.Sprintf("neuracraft: POST /pipelines/{id}/run: invalid pipeline ID %q", id))
		_, err = c.GetRun(t.Context(), id)
		require.EqualError(t, err, fmt.Sprintf("neuracraft: GET /runs/{run_id}: invalid run ID %q", id))
		_, err = c.WaitRun(t.Context(), id)
		require.EqualError(t, err, fmt.Sprintf("neuracraft: GET /runs/{run_id}: invalid run ID %q", id))
		err = c.CancelRun(t.Context(), id)
		require.EqualError(t, err, fmt.Sprintf("neuracraft: POST /runs/{run_id}/cancel: invalid run ID %q", id))
	}
	require.Len(t, srv.Requests(), before, "nothing was sent")
}

func TestRunIDIsOnePathSegment(t *testing.T) {
	t.Parallel()
	srv, c, _ := newRunServer(t)
	_, err := c.GetRun(t.Context(), "run_1/cancel?x=1")
	require.ErrorIs(t, err, ErrNotFound)
	reqs := srv.RequestsFor("GET /runs/{run_id}")
	require.Len(t, reqs, 1, "the ID stays one segment of GET /runs/{run_id}")
	require.Equal(t, "/v1/runs/run_1/cancel?x=1", reqs[0].Path)
	require.Empty(t, reqs[0].Query)
}

func TestGetRun(t *testing.T) {
	t.Parallel()
	srv, c, pid := newRunServer(t)
	srv.ScriptRuns(pid, neuracrafttest.RunFailed(8102, specRunMessage).WithPluginID("pdf-export-1"))
	started, err := c.StartRun(t.Context(), pid, nil)
	require.NoError(t, err)

	run, err := c.GetRun(t.Context(), started.ID)
	require.NoError(t, err, "a failed run is a successful read")
	reqs := srv.RequestsFor("GET /runs/{run_id}")
	require.Len(t, reqs, 1)
	requestID := reqs[0].Header.Get("X-Request-ID")
	require.NotEmpty(t, requestID)
	require.Empty(t, cmp.Diff(&RunError{RunID: started.ID, Code: 8102, Message: specRunMessage,
		PluginID: "pdf-export-1", RequestID: requestID}, run.Error))
	require.Equal(t, pid, run.PipelineID)
	require.False(t, run.StartedAt.IsZero())
	require.False(t, run.CompletedAt.IsZero())

	_, err = c.GetRun(t.Context(), "run_missing")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestCancelRun(t *testing.T) {
	t.Parallel()
	srv, c, pid := newRunServer(t)
	srv.ScriptRuns(pid, neuracrafttest.RunCompleted(nil).WithPolls("running", 100))
	started, err := c.StartRun(t.Context(), pid, nil)
	require.NoError(t, err)
	run, err := c.GetRun(t.Context(), started.ID)
	require.NoError(t, err)
	require.Equal(t, "running", run.Status)

	require.NoError(t, c.CancelRun(t.Context(), started.ID))
	run, err = c.WaitRun(t.Context(), started.ID)
	require.ErrorIs(t, err, ErrRunCanceled)
	require.Equal(t, "cancelled", run.Status)
	require.Len(t, srv.RequestsFor("POST /runs/{run_id}/cancel"), 1)

	err = c.CancelRun(t.Context(), "run_missing")
	require.ErrorIs(t, err, ErrNotFound)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
}

func TestWaitRunKeepsTheAPIKeyOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &runBase{answers: []runAnswer{runAnswerOf("running", "Retry-After", "30")}}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		c := base.client(nil)
		_, err := c.WaitRun(ctx, "run_1")
		require.Error(t, err)
		require.NotContains(t, err.Error(), c.APIKey)
	})
}

// TestStateOf: the one reading of a run's status, used by Done, by
// WaitRun's error and by the decoder's Run.Error.
func TestStateOf(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]runState{
		"completed": runCompleted, "COMPLETED": runCompleted, " Completed\n": runCompleted,
		"failed": runFailed, " Failed ": runFailed,
		"cancelled": runCanceled, "canceled": runCanceled, "CANCELED": runCanceled,
		"queued": runActive, "running": runActive, "": runActive, "succeeded": runActive,
		"cancellation_requested": runActive, "fail": runActive,
	} {
		require.Equal(t, want, stateOf(status), "status %q", status)
	}
}

func TestRunDone(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]bool{
		"completed": true, "failed": true, "cancelled": true, "canceled": true,
		"COMPLETED": true, " Failed ": true, "Cancelled": true,
		"queued": false, "running": false, "": false, "succeeded": false, "paused": false,
		"cancellation_requested": false,
	} {
		assert.Equal(t, want, (&Run{Status: status}).Done(), "status %q", status)
	}
	assert.False(t, (*Run)(nil).Done())
}
