// Tests of pipeline runs: decoding a run, RunError, and StartRun, GetRun,
// WaitRun and CancelRun on the fake server (behaviour) and on an
// in-memory API under synctest (timing).

package neuracraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunUnmarshal(t *testing.T) {
	started, completed := mustTime(t, "2023-11-15T10:00:00Z"), mustTime(t, "2023-11-15T10:00:04Z")
	tests := []struct {
		name string
		file string // in testdata/runs, or
		doc  string // inline
		want Run
	}{
		{name: "started", file: "started.json", want: Run{ID: "run_def456", Status: "queued",
			MonitorURL: "https://api.neuracraft.com/v1/runs/run_def456"}},
		{name: "running", file: "running.json", want: Run{ID: "run_def456", PipelineID: "pipe_abc123",
			Status: "running", StartedAt: started}},
		{name: "completed", file: "completed.json", want: Run{ID: "run_def456", PipelineID: "pipe_abc123",
			Status: "completed", StartedAt: started, CompletedAt: completed,
			Output: json.RawMessage(`{"document_url": "https://files.neuracraft.com/out/inv_42.pdf", "pages": 3}`)}},
		{name: "failed, plugin code", file: "failed_plugin_8102.json", want: Run{ID: "run_def456", PipelineID: "pipe_abc123",
			Status: "failed", StartedAt: started, CompletedAt: completed,
			Error: &RunError{RunID: "run_def456", Code: 8102, Message: specRunMessage, PluginID: "pdf-export-1"}}},
		{name: "failed, numeric string code, pluginId", file: "failed_plugin_string_code.json", want: Run{ID: "run_def456",
			PipelineID: "pipe_abc123", Status: "failed", StartedAt: started, CompletedAt: completed,
			Error: &RunError{RunID: "run_def456", Code: 8102, Message: specRunMessage, PluginID: "pdf-export-1"}}},
		{name: "failed, string code and stack", file: "failed_timeout_stack.json", want: Run{ID: "run_9f3a21",
			PipelineID: "pipe_abc123", Status: "failed", StartedAt: mustTime(t, "2023-11-15T11:20:00Z"),
			CompletedAt: mustTime(t, "2023-11-15T11:20:31.25Z"),
			Error: &RunError{RunID: "run_9f3a21", Reason: "TIMEOUT", Message: `Step "enrich" exceeded its 30s timeout.`,
				PluginID: "http-enrich-2", Stack: []string{
					"at HttpEnrich.call (plugins/http-enrich/index.js:88:13)",
					"at Step.run (runtime/step.js:41:22)",
					"at Pipeline.execute (runtime/pipeline.js:120:9)",
				}}}},
		{name: "cancelled", file: "cancelled.json", want: Run{ID: "run_def456", PipelineID: "pipe_abc123",
			Status: "cancelled", StartedAt: started, CompletedAt: mustTime(t, "2023-11-15T10:00:02Z")}},

		{name: "failed without error", doc: `{"id":"run_1","status":"failed"}`,
			want: Run{ID: "run_1", Status: "failed", Error: &RunError{RunID: "run_1"}}},
		{name: "failed in capitals", doc: `{"id":"run_1","status":"FAILED","error":{"code":"RUNTIME"}}`,
			want: Run{ID: "run_1", Status: "FAILED", Error: &RunError{RunID: "run_1", Reason: "RUNTIME"}}},
		{name: "error as a string", doc: `{"id":"run_1","status":"failed","error":"boom\nat line 2"}`,
			want: Run{ID: "run_1", Status: "failed", Error: &RunError{RunID: "run_1", Message: "boom at line 2"}}},
		{name: "error of a run that did not fail is ignored", doc: `{"id":"run_1","status":"completed","error":{"code":8102}}`,
			want: Run{ID: "run_1", Status: "completed"}},
		{name: "id wins over run_id", doc: `{"id":"run_1","run_id":"run_2"}`, want: Run{ID: "run_1"}},
		{name: "null output", doc: `{"id":"run_1","output":null}`, want: Run{ID: "run_1"}},
		{name: "non-plugin numeric code is the reason", doc: `{"status":"failed","error":{"code":500,"message":"x"}}`,
			want: Run{Status: "failed", Error: &RunError{Reason: "500", Message: "x"}}},
		{name: "404 string code is the reason", doc: `{"status":"failed","error":{"code":"404"}}`,
			want: Run{Status: "failed", Error: &RunError{Reason: "404"}}},
		{name: "float code is the reason", doc: `{"status":"failed","error":{"code":8102.5}}`,
			want: Run{Status: "failed", Error: &RunError{Reason: "8102.5"}}},
		{name: "padded numeric string code", doc: `{"status":"failed","error":{"code":" 8102 "}}`,
			want: Run{Status: "failed", Error: &RunError{Code: 8102}}},
		{name: "plugin_id wins over pluginId", doc: `{"status":"failed","error":{"plugin_id":"a","pluginId":"b"}}`,
			want: Run{Status: "failed", Error: &RunError{PluginID: "a"}}},
		{name: "stack as one string", doc: `{"status":"failed","error":{"stack":"at a\n\n\tat b\r\n"}}`,
			want: Run{Status: "failed", Error: &RunError{Stack: []string{"at a", "at b"}}}},
		{name: "wrong types spoil only themselves",
			doc: `{"id":5,"run_id":"run_7","pipeline_id":["p"],"status":"failed","output":"text","monitor_url":{},
				"started_at":"yesterday","completed_at":1700000000,
				"error":{"code":true,"message":5,"plugin_id":null,"stack":[1,"at a",{}]}}`,
			want: Run{ID: "run_7", Status: "failed", Output: json.RawMessage(`"text"`),
				Error: &RunError{RunID: "run_7", Stack: []string{"at a"}}}},
		{name: "error of the wrong type", doc: `{"status":"failed","error":[1,2]}`,
			want: Run{Status: "failed", Error: &RunError{}}},
		{name: "empty object", doc: `{}`, want: Run{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.doc)
			if tt.file != "" {
				data = readRunFile(t, tt.file)
			}
			var got Run
			require.NoError(t, json.Unmarshal(data, &got))
			require.Empty(t, cmp.Diff(tt.want, got))
		})
	}
}

func TestRunUnmarshalReplaces(t *testing.T) {
	run := Run{ID: "run_old", Status: "failed", Error: &RunError{Message: "old"}, Output: json.RawMessage(`1`)}
	require.NoError(t, json.Unmarshal([]byte(`{"id":"run_new","status":"running"}`), &run))
	require.Empty(t, cmp.Diff(Run{ID: "run_new", Status: "running"}, run))

	// null leaves the run as it was, like encoding/json does.
	require.NoError(t, json.Unmarshal([]byte(`null`), &run))
	require.Equal(t, "run_new", run.ID)
}

func TestRunUnmarshalNotAnObject(t *testing.T) {
	for _, doc := range []string{`[]`, `"run_1"`, `5`, `true`, `[{"id":"run_1"}]`} {
		var run Run
		err := json.Unmarshal([]byte(doc), &run)
		require.Error(t, err, doc)
		require.Contains(t, err.Error(), "a run must be a JSON object")
	}
	var run Run
	require.Error(t, json.Unmarshal([]byte(`{"id":`), &run), "invalid JSON")
}

// TestRunErrorTextIsCleanedAndCapped: the server's text reaches Error()
// as one line, Message at 300 characters like APIError.Message, Reason at
// 64, IDs at 128, Stack at 50 entries.
func TestRunErrorTextIsCleanedAndCapped(t *testing.T) {
	long := strings.Repeat("x", 1000)
	frames := make([]string, 60)
	for i := range frames {
		frames[i] = fmt.Sprintf("at f%d (%s)", i, long)
	}
	doc, err := json.Marshal(map[string]any{
		"id":     "run_1\r\nX-Injected: yes" + long,
		"status": "failed",
		"error": map[string]any{
			"code":      "TIME\x1bOUT " + long,
			"message":   "line one\n\tline two\x00\u0085 \xff" + long,
			"plugin_id": "pdf\nexport" + long,
			"stack":     frames,
		},
	})
	require.NoError(t, err)
	var run Run
	require.NoError(t, json.Unmarshal(doc, &run))
	e := run.Error
	require.NotNil(t, e)

	checks := []struct {
		field string
		value string
		max   int
	}{
		{"RunID", e.RunID, maxRunID},
		{"Reason", e.Reason, maxRunReason},
		{"Message", e.Message, maxMessage},
		{"PluginID", e.PluginID, maxRunID},
	}
	for _, c := range checks {
		assert.Equal(t, c.max+1, utf8.RuneCountInString(c.value), "%s: capped, with an ellipsis", c.field)
		assert.True(t, strings.HasSuffix(c.value, "…"), c.field)
		assert.Equal(t, cleanText(c.value, 1<<20), c.value, "%s is clean", c.field)
	}
	assert.True(t, strings.HasPrefix(e.Message, "line one line two"), e.Message)
	assert.True(t, strings.HasPrefix(e.RunID, "run_1 X-Injected: yes"), e.RunID)
	assert.Equal(t, 300, maxMessage, "the cap the docs state")
	assert.Equal(t, 64, maxRunReason, "the cap the docs state")
	assert.Equal(t, 128, maxRunID, "the cap the docs state")

	require.Len(t, e.Stack, 50)
	assert.Equal(t, "… 11 more", e.Stack[49], "the last entry says how many were left out")
	for i, f := range e.Stack[:49] {
		assert.Equal(t, maxMessage+1, utf8.RuneCountInString(f), "frame %d capped", i)
		assert.True(t, strings.HasPrefix(f, fmt.Sprintf("at f%d (", i)))
	}

	msg := e.Error()
	assert.NotContains(t, msg, "\n")
	assert.NotContains(t, msg, "\r")
	assert.NotContains(t, msg, "at f0", "Error prints no stack")
	assert.Less(t, len(msg), 2000, "Error is bounded")

	// A stack of exactly 50 entries is kept whole.
	require.NoError(t, json.Unmarshal([]byte(`{"status":"failed","error":{"stack":`+
		string(must(json.Marshal(frames[:50])))+`}}`), &run))
	require.Len(t, run.Error.Stack, 50)
	assert.True(t, strings.HasPrefix(run.Error.Stack[49], "at f49 ("))
}

func TestRunDone(t *testing.T) {
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

func TestRunErrorError(t *testing.T) {
	registerPluginCodesForTest(t, PluginCodeInfo{Code: 8102, Name: "PDF Export Failed"})
	tests := []struct {
		name string
		err  *RunError
		want string
	}{
		{"plugin failure", &RunError{RunID: "run_def456", Code: 8102, Message: specRunMessage,
			PluginID: "pdf-export-1", RequestID: "req_abc123", Stack: []string{"at render"}},
			"neuracraft: run run_def456: failed: 8102 PDF Export Failed: " + specRunMessage +
				" (plugin pdf-export-1, request req_abc123)"},
		{"string code", &RunError{RunID: "run_1", Reason: "TIMEOUT", Message: "Step exceeded 30s", RequestID: "req_1"},
			"neuracraft: run run_1: failed: TIMEOUT: Step exceeded 30s (request req_1)"},
		{"unregistered plugin code", &RunError{RunID: "run_1", Code: 8103},
			"neuracraft: run run_1: failed: 8103 Plugin Error"},
		{"no details", &RunError{RunID: "run_1", RequestID: "req_1"}, "neuracraft: run run_1: failed (request req_1)"},
		{"cancelled", &RunError{RunID: "run_1", Canceled: true, RequestID: "req_1"},
			"neuracraft: run run_1: cancelled (request req_1)"},
		{"zero value", &RunError{}, "neuracraft: run failed"},
		{"zero value, cancelled", &RunError{Canceled: true}, "neuracraft: run cancelled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.err.Error())
			require.NotContains(t, tt.want, "  ")
			require.NotContains(t, tt.want, "()")
			require.False(t, strings.HasSuffix(tt.want, ": "))
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				require.Equal(t, tt.want, fmt.Sprintf(verb, tt.err), verb)
			}
			require.Equal(t, strconv.Quote(tt.want), fmt.Sprintf("%q", tt.err))
		})
	}
}

func TestRunErrorLogValue(t *testing.T) {
	var buf strings.Builder
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	logger.Info("run", "err", &RunError{RunID: "run_1", Code: 8102, Message: "bad template",
		PluginID: "pdf-export-1", RequestID: "req_1", Stack: []string{"at secret_frame"}})
	logger.Info("run", "err", &RunError{RunID: "run_2", Canceled: true, Reason: "CUSTOM"})
	require.Equal(t,
		`level=INFO msg=run err.run_id=run_1 err.code=8102 err.message="bad template" err.plugin_id=pdf-export-1 err.request_id=req_1`+"\n"+
			`level=INFO msg=run err.run_id=run_2 err.canceled=true err.reason=CUSTOM`+"\n",
		buf.String())
}

// TestRunErrorMatches: a failed run matches ErrRunFailed and its plugin
// code's classification, never an HTTP sentinel, and is never retryable,
// also when wrapped.
func TestRunErrorMatches(t *testing.T) {
	all := map[string]error{
		"ErrRunFailed": ErrRunFailed, "ErrRunCanceled": ErrRunCanceled, "ErrPlugin": ErrPlugin,
		"Code(8102)": Code(8102), "Code(8103)": Code(8103), "Code(404)": Code(404), "Code(0)": Code(0),
		"ErrNotFound": ErrNotFound, "ErrInternal": ErrInternal, "ErrBadRequest": ErrBadRequest,
		"ErrRateLimited": ErrRateLimited, "ErrUnavailable": ErrUnavailable,
		"context.DeadlineExceeded": context.DeadlineExceeded, "context.Canceled": context.Canceled,
	}
	tests := []struct {
		name  string
		err   *RunError
		match []string
	}{
		{"plugin 8102", &RunError{Code: 8102, Message: "invalid template"}, []string{"ErrRunFailed", "ErrPlugin", "Code(8102)"}},
		{"string code", &RunError{Reason: "TIMEOUT"}, []string{"ErrRunFailed"}},
		{"non-plugin code set by hand", &RunError{Code: 404}, []string{"ErrRunFailed"}},
		{"cancelled", &RunError{Canceled: true}, []string{"ErrRunCanceled"}},
		{"zero", &RunError{}, []string{"ErrRunFailed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, err := range []error{tt.err, fmt.Errorf("nightly job: %w", tt.err),
				errors.Join(errors.New("other"), tt.err)} {
				var got []string
				for name, target := range all {
					if errors.Is(err, target) {
						got = append(got, name)
					}
				}
				require.ElementsMatch(t, tt.match, got, "%v", err)
				require.False(t, IsRetryable(err), "IsRetryable(%v)", err)
				var runErr *RunError
				require.True(t, errors.As(err, &runErr))
				require.Same(t, tt.err, runErr)
			}
		})
	}
	// Even a plugin code registered as retryable: re-running is the
	// caller's decision.
	registerPluginCodesForTest(t, PluginCodeInfo{Code: 8987, Name: "Renderer Busy", Retryable: true})
	require.False(t, IsRetryable(&RunError{Code: 8987}))
	require.False(t, IsPlugin(&RunError{Reason: "8987"}))
	require.True(t, IsPlugin(&RunError{Code: 8987}))
}

func TestStartRun(t *testing.T) {
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
	srv, c, _ := newRunServer(t)
	_, err := c.GetRun(t.Context(), "run_1/cancel?x=1")
	require.ErrorIs(t, err, ErrNotFound)
	reqs := srv.RequestsFor("GET /runs/{run_id}")
	require.Len(t, reqs, 1, "the ID stays one segment of GET /runs/{run_id}")
	require.Equal(t, "/v1/runs/run_1/cancel?x=1", reqs[0].Path)
	require.Empty(t, reqs[0].Query)
}

func TestGetRun(t *testing.T) {
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

// TestWaitRunEnds runs each kind of end on the fake server.
func TestWaitRunEnds(t *testing.T) {
	tests := []struct {
		name      string
		script    *neuracrafttest.RunScript // nil: the fake's default
		wantPolls int
		check     func(t *testing.T, run *Run, err error, requestID string)
	}{
		{
			name: "completed, default script", wantPolls: 3,
			check: func(t *testing.T, run *Run, err error, _ string) {
				require.NoError(t, err)
				require.Equal(t, "completed", run.Status)
				require.JSONEq(t, `{"result":"ok","records_processed":42}`, string(run.Output))
				require.Nil(t, run.Error)
			},
		},
		{
			name: "completed at once", script: new(neuracrafttest.RunCompleted([]int{1, 2})), wantPolls: 1,
			check: func(t *testing.T, run *Run, err error, _ string) {
				require.NoError(t, err)
				require.JSONEq(t, `[1,2]`, string(run.Output))
			},
		},
		{
			name: "unknown statuses are not an end", wantPolls: 4,
			script: new(neuracrafttest.RunCompleted(nil).WithPolls("paused", 2).WithPolls("succeeded", 1)),
			check: func(t *testing.T, run *Run, err error, _ string) {
				require.NoError(t, err)
				require.Equal(t, "completed", run.Status)
			},
		},
		{
			name: "failed with plugin code 8102", wantPolls: 2,
			script: new(neuracrafttest.RunFailed(8102, specRunMessage).WithPolls("running", 1).
				WithPluginID("pdf-export-1").WithStack("at render (pdf.js:1)", "at export (pdf.js:9)")),
			check: func(t *testing.T, run *Run, err error, requestID string) {
				var runErr *RunError
				require.ErrorAs(t, err, &runErr)
				require.Same(t, run.Error, runErr, "the error is the run's")
				require.Empty(t, cmp.Diff(&RunError{RunID: run.ID, Code: 8102, Message: specRunMessage,
					PluginID: "pdf-export-1", Stack: []string{"at render (pdf.js:1)", "at export (pdf.js:9)"},
					RequestID: requestID}, runErr))
				require.ErrorIs(t, err, ErrRunFailed)
				require.ErrorIs(t, err, Code(8102))
				require.ErrorIs(t, err, ErrPlugin)
				require.NotErrorIs(t, err, ErrNotFound)
				require.NotErrorIs(t, err, ErrInternal)
				require.NotErrorIs(t, err, ErrRunCanceled)
				require.False(t, IsRetryable(err))
				require.False(t, IsRetryable(fmt.Errorf("wrapped: %w", err)))
				require.Equal(t, "failed", run.Status)
			},
		},
		{
			name: "failed with plugin code as a numeric string", wantPolls: 1,
			script: new(neuracrafttest.RunFailed("8102", specRunMessage)),
			check: func(t *testing.T, _ *Run, err error, _ string) {
				require.ErrorIs(t, err, Code(8102))
				require.ErrorIs(t, err, ErrPlugin)
				require.ErrorIs(t, err, ErrRunFailed)
			},
		},
		{
			name: "failed with a string code", wantPolls: 1,
			script: new(neuracrafttest.RunFailed("VALIDATION", "Field \"to\" is required").WithPluginID("mail-1")),
			check: func(t *testing.T, run *Run, err error, requestID string) {
				require.ErrorIs(t, err, ErrRunFailed)
				require.NotErrorIs(t, err, ErrPlugin)
				require.Equal(t, fmt.Sprintf(`neuracraft: run %s: failed: VALIDATION: Field "to" is required (plugin mail-1, request %s)`,
					run.ID, requestID), err.Error())
			},
		},
		{
			name: "cancelled", wantPolls: 2, script: new(neuracrafttest.RunCancelled().WithPolls("running", 1)),
			check: func(t *testing.T, run *Run, err error, requestID string) {
				require.ErrorIs(t, err, ErrRunCanceled)
				require.NotErrorIs(t, err, ErrRunFailed)
				require.False(t, IsRetryable(err))
				require.Nil(t, run.Error, "Run.Error is for failures")
				var runErr *RunError
				require.ErrorAs(t, err, &runErr)
				require.Empty(t, cmp.Diff(&RunError{RunID: run.ID, Canceled: true, RequestID: requestID}, runErr))
				require.Equal(t, fmt.Sprintf("neuracraft: run %s: cancelled (request %s)", run.ID, requestID), err.Error())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c, pid := newRunServer(t)
			if tt.script != nil {
				srv.ScriptRuns(pid, *tt.script)
			}
			started, err := c.StartRun(t.Context(), pid, nil)
			require.NoError(t, err)
			run, err := c.WaitRun(t.Context(), started.ID)
			require.NotNil(t, run)
			require.Equal(t, started.ID, run.ID)
			polls := srv.RequestsFor("GET /runs/{run_id}")
			require.Len(t, polls, tt.wantPolls)
			tt.check(t, run, err, polls[len(polls)-1].Header.Get("X-Request-ID"))
		})
	}
}

func TestCancelRun(t *testing.T) {
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

// TestWaitRunPollFailures: an error that outlasts the Transport's
// retries ends the wait, returned as it is, with the last run read.
func TestWaitRunPollFailures(t *testing.T) {
	t.Run("non-retryable", func(t *testing.T) {
		srv, c, pid := newRunServer(t)
		started, err := c.StartRun(t.Context(), pid, nil)
		require.NoError(t, err)
		srv.Fail("GET /runs/{run_id}", 1, neuracrafttest.Error(403, "insufficient_scope", "Missing scope pipeline:read"))
		run, err := c.WaitRun(t.Context(), started.ID)
		apiErr, ok := err.(*APIError)
		require.True(t, ok, "the *APIError itself, not wrapped: %T %v", err, err)
		require.Equal(t, 403, apiErr.StatusCode)
		require.ErrorIs(t, err, ErrForbidden)
		require.Nil(t, run, "no poll succeeded")
		require.Len(t, srv.RequestsFor("GET /runs/{run_id}"), 1, "403 is not retried")
	})
	t.Run("after a successful poll", func(t *testing.T) {
		base := &runBase{answers: []runAnswer{
			{body: `{"id":"run_1","status":"queued"}`},
			{status: 404, body: `{"error":{"code":"not_found","message":"Resource not found"}}`},
		}}
		run, err := base.client(func() float64 { return 0 }).WaitRun(t.Context(), "run_1")
		require.ErrorIs(t, err, ErrNotFound)
		require.Equal(t, &Run{ID: "run_1", Status: "queued"}, run, "the last run read")
	})
	t.Run("transient failures are retried by the Transport", func(t *testing.T) {
		srv, c, pid := newRunServer(t)
		started, err := c.StartRun(t.Context(), pid, nil)
		require.NoError(t, err)
		srv.Fail("GET /runs/{run_id}", 2, neuracrafttest.Error(503, "service_unavailable", "down"))
		run, err := c.WaitRun(t.Context(), started.ID)
		require.NoError(t, err)
		require.Equal(t, "completed", run.Status)
		require.Len(t, srv.RequestsFor("GET /runs/{run_id}"), 5, "2 failed attempts, then 3 polls")
	})
	t.Run("transient failures that outlast the retries", func(t *testing.T) {
		srv, _, pid := newRunServer(t)
		c := runClient(srv) // a Client's fields are fixed after its first call
		c.Retry.MaxAttempts = 3
		started, err := c.StartRun(t.Context(), pid, nil)
		require.NoError(t, err)
		srv.Fail("GET /runs/{run_id}", 3, neuracrafttest.Error(503, "service_unavailable", "down"))
		run, err := c.WaitRun(t.Context(), started.ID)
		apiErr, ok := err.(*APIError)
		require.True(t, ok, "the *APIError itself: %T %v", err, err)
		require.Equal(t, 503, apiErr.StatusCode)
		require.Equal(t, 3, apiErr.Attempts)
		require.Nil(t, run)
		require.Len(t, srv.RequestsFor("GET /runs/{run_id}"), 3)
	})
	t.Run("a poll answer that is not JSON", func(t *testing.T) {
		srv, c, pid := newRunServer(t)
		started, err := c.StartRun(t.Context(), pid, nil)
		require.NoError(t, err)
		srv.Fail("GET /runs/{run_id}", 1, neuracrafttest.Truncated(200))
		_, err = c.WaitRun(t.Context(), started.ID)
		require.ErrorContains(t, err, "decoding the response body")
		require.False(t, IsRetryable(err))
	})
	t.Run("context already cancelled", func(t *testing.T) {
		_, c, _ := newRunServer(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.WaitRun(ctx, "run_1")
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestWaitRunHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in5s := time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
		base := &runBase{answers: []runAnswer{
			runAnswerOf("queued", "Retry-After", in5s), // an HTTP-date, 5 s after the first poll
			runAnswerOf("queued", "Retry-After", "3"),
			runAnswerOf("running", "Retry-After", "7"),
			runAnswerOf("running", "Retry-After", "3600"),
			runAnswerOf("completed"),
		}}
		run, err := base.client(noJitter(t)).WaitRun(t.Context(), "run_1")
		require.NoError(t, err)
		require.Equal(t, "completed", run.Status)
		require.Equal(t, []time.Duration{5 * time.Second, 3 * time.Second, 7 * time.Second, 60 * time.Second}, base.gaps(),
			"an HTTP-date 5 s ahead, 3 s, 7 s, and 3600 s capped at 60 s")
	})
}

func TestWaitRunIgnoresUnusableRetryAfter(t *testing.T) {
	for _, v := range []string{"0", "-5", "soon", "Sun, 06 Nov 1994 08:49:37 GMT", ""} { // a past date: synctest starts in 2000
		t.Run(v, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &runBase{answers: []runAnswer{runAnswerOf("running", "Retry-After", v), runAnswerOf("completed")}}
				_, err := base.client(func() float64 { return 0.5 }).WaitRun(t.Context(), "run_1")
				require.NoError(t, err)
				require.Equal(t, []time.Duration{500 * time.Millisecond}, base.gaps(), "the backoff: half of 1 s")
			})
		})
	}
}

// TestPollDelay holds the documented numbers: up to 1 s after the first
// poll, doubling, capped at 30 s; a Retry-After up to 60 s.
func TestPollDelay(t *testing.T) {
	near1 := 1 - 1e-9
	c := &Client{}
	tests := []struct {
		poll       int
		r          float64
		retryAfter string
		want       time.Duration
	}{
		{1, 0, "", 0},
		{1, 0.5, "", 500 * time.Millisecond},
		{2, 0.5, "", time.Second},
		{3, 0.5, "", 2 * time.Second},
		{5, 0.5, "", 8 * time.Second},
		{6, 0.5, "", 15 * time.Second}, // 32 s capped at 30 s
		{1, near1, "", time.Second - 1},
		{2, near1, "", 2*time.Second - 2},
		{5, near1, "", 16*time.Second - 16},
		{6, near1, "", 30*time.Second - 30},
		{7, near1, "", 30*time.Second - 30},
		{1000, near1, "", 30*time.Second - 30},
		{1, 0.5, "12", 12 * time.Second},
		{9, 0.5, "60", 60 * time.Second},
		{1, 0.5, "61", 60 * time.Second},
		{1, 0.5, "99999999999999999999", 60 * time.Second},
	}
	for _, tt := range tests {
		c.rand = func() float64 { return tt.r }
		h := http.Header{}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		got := c.pollDelay(h, tt.poll)
		assert.InDelta(t, float64(tt.want), float64(got), 64, "poll %d, r %v, Retry-After %q", tt.poll, tt.r, tt.retryAfter)
	}
	assert.Equal(t, time.Second, runPollBase, "the docs' 1 s")
	assert.Equal(t, 30*time.Second, runPollMax, "the docs' 30 s")
	assert.Equal(t, 60*time.Second, runPollMaxRetryAfter, "the docs' 60 s")
}

// TestWaitRunBackoffBounds polls a run that never ends with the real
// jitter: every gap is below its bound, 1 s doubling up to 30 s.
func TestWaitRunBackoffBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &runBase{answers: []runAnswer{runAnswerOf("running")}}
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		_, err := base.client(nil).WaitRun(ctx, "run_1")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		gaps := base.gaps()
		require.Greater(t, len(gaps), 100, "an hour of polls at most 30 s apart")
		var late time.Duration // the gaps once the bound is 30 s
		for i, g := range gaps {
			bound := min(time.Second<<min(i, 10), 30*time.Second)
			require.GreaterOrEqual(t, g, time.Duration(0))
			require.Less(t, g, bound, "gap after poll %d", i+1)
			if i >= 5 {
				late += g
			}
		}
		mean := late / time.Duration(len(gaps)-5)
		require.InDelta(t, float64(15*time.Second), float64(mean), float64(5*time.Second),
			"full jitter: the gaps average half of the 30 s bound")
	})
}

// TestWaitRunDeadline: no wait ends after the deadline; WaitRun returns at
// once, with an error that matches context.DeadlineExceeded and names the
// last status.
func TestWaitRunDeadline(t *testing.T) {
	tests := []struct {
		name      string
		answers   []runAnswer
		r         float64
		timeout   time.Duration
		wantAt    time.Duration // when WaitRun returns, after the start
		wantPolls int
		wantText  string
	}{
		{
			name:    "Retry-After",
			answers: []runAnswer{runAnswerOf("queued", "Retry-After", "4"), runAnswerOf("running", "Retry-After", "4")},
			timeout: 10 * time.Second, wantAt: 8 * time.Second, wantPolls: 3,
			wantText: `neuracraft: run run_1: stopped waiting: last status "running"; the next poll, in 4s, would come after the context deadline (request req_3): context deadline exceeded`,
		},
		{
			name:    "next poll exactly at the deadline",
			answers: []runAnswer{runAnswerOf("running", "Retry-After", "5")},
			timeout: 10 * time.Second, wantAt: 5 * time.Second, wantPolls: 2,
			wantText: `neuracraft: run run_1: stopped waiting: last status "running"; the next poll, in 5s, would come after the context deadline (request req_2): context deadline exceeded`,
		},
		{
			name:    "backoff",
			answers: []runAnswer{runAnswerOf("paused")},
			r:       0.75, timeout: 2 * time.Second, wantAt: 750 * time.Millisecond, wantPolls: 2,
			wantText: `neuracraft: run run_1: stopped waiting: last status "paused"; the next poll, in 1.5s, would come after the context deadline (request req_2): context deadline exceeded`,
		},
		{
			name:    "status cleaned",
			answers: []runAnswer{{body: `{"id":"run_1","status":"run\nning\u001b[31m"}`, header: []string{"Retry-After", "30"}}},
			timeout: 10 * time.Second, wantAt: 0, wantPolls: 1,
			wantText: `neuracraft: run run_1: stopped waiting: last status "run ning [31m"; the next poll, in 30s, would come after the context deadline (request req_1): context deadline exceeded`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &runBase{answers: tt.answers}
				ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
				defer cancel()
				start := time.Now()
				run, err := base.client(func() float64 { return tt.r }).WaitRun(ctx, "run_1")
				require.Equal(t, tt.wantAt, time.Since(start), "returned at once, not at the deadline")
				require.NoError(t, ctx.Err(), "the deadline has not passed")
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.EqualError(t, err, tt.wantText)
				require.False(t, IsRetryable(err))
				var runErr *RunError
				require.False(t, errors.As(err, &runErr), "the run has not ended")
				require.NotNil(t, run, "the last run read")
				require.Len(t, base.gaps(), tt.wantPolls-1)
			})
		})
	}
}

func TestWaitRunCancelledDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &runBase{answers: []runAnswer{runAnswerOf("running", "Retry-After", "20")}}
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		time.AfterFunc(2*time.Second, cancel)
		run, err := base.client(noJitter(t)).WaitRun(ctx, "run_1")
		require.Equal(t, 2*time.Second, time.Since(start), "the wait ended at once")
		require.ErrorIs(t, err, context.Canceled)
		require.EqualError(t, err, `neuracraft: run run_1: stopped waiting: last status "running" (request req_1): context canceled`)
		require.Equal(t, "running", run.Status)
		require.Empty(t, base.gaps(), "one poll")
	})
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

// FuzzRun decodes arbitrary JSON into a Run, seeded with testdata/runs:
// no panic, and a failed run's error is clean, capped, one line, matches
// ErrRunFailed and is not retryable.
func FuzzRun(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "runs"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "runs", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`null`, `[]`, `{}`, `"failed"`, `{"status":"failed"}`, `{"status":"failed","error":"x\ny"}`,
		`{"status":"failed","error":{"code":"8102","stack":"a\nb\n\n"}}`,
		`{"status":"failed","error":{"code":-8102,"message":null,"pluginId":"\u001b[2J"}}`,
		`{"status":"failed","error":{"code":1e400}}`, `{"status":"Failed","error":{"code":"\u00858102"}}`,
		`{"id":"\ud800","status":"failed","error":{"stack":["\ud800",1,null,[],{}]}}`,
		`{"status":"failed","error":{"code":"` + strings.Repeat("9", 400) + `"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var run Run
		if err := json.Unmarshal(data, &run); err != nil {
			return
		}
		run.Done()
		failed := strings.EqualFold(strings.TrimSpace(run.Status), "failed")
		if failed != (run.Error != nil) {
			t.Fatalf("status %q, Error %v", run.Status, run.Error)
		}
		if run.Error == nil {
			return
		}
		checkRunErrorClean(t, run.Error)
		if !errors.Is(run.Error, ErrRunFailed) || errors.Is(run.Error, ErrRunCanceled) || IsRetryable(run.Error) {
			t.Fatalf("%v: wrong classification", run.Error)
		}
		if errors.Is(run.Error, ErrNotFound) || errors.Is(run.Error, ErrInternal) || errors.Is(run.Error, ErrBadRequest) {
			t.Fatalf("%v matches an HTTP sentinel", run.Error)
		}
	})
}

// FuzzWaitRun answers WaitRun's first poll with an arbitrary status,
// Retry-After and body: no panic, no wait past the deadline, errors on
// one line without the API key, a *RunError only for an ended run.
func FuzzWaitRun(f *testing.F) {
	f.Add(200, "", []byte(`{"id":"run_1","status":"completed","output":{}}`))
	f.Add(200, "5", []byte(`{"id":"run_1","status":"running"}`))
	f.Add(200, "Wed, 21 Oct 2015 07:28:00 GMT", readRunFileF(f, "failed_timeout_stack.json"))
	f.Add(200, "", readRunFileF(f, "failed_plugin_8102.json"))
	f.Add(200, "", readRunFileF(f, "cancelled.json"))
	f.Add(200, "-1", []byte(`{"status":"canceled"}`))
	f.Add(404, "", []byte(`{"error":{"code":"not_found","message":"Resource not found"}}`))
	f.Add(500, "1", []byte(`<html>oops</html>`))
	f.Add(200, "", []byte(`{"id":"run_1","status":`))
	f.Add(204, "", []byte(``))
	f.Add(302, "", []byte(`moved`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 200 || status > 599 {
			return
		}
		synctest.Test(t, func(t *testing.T) {
			a := runAnswer{status: status, body: string(body)}
			if retryAfter != "" && !strings.ContainsAny(retryAfter, "\r\n\x00") {
				a.header = []string{"Retry-After", retryAfter}
			}
			base := &runBase{answers: []runAnswer{a}}
			c := base.client(func() float64 { return 0.5 })
			c.Retry = RetryPolicy{MaxAttempts: 1}
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			run, err := c.WaitRun(ctx, "run_1")
			if time.Since(start) > 100*time.Millisecond {
				t.Fatalf("WaitRun returned after %s, past the deadline", time.Since(start))
			}
			if err == nil {
				if run == nil || !run.Done() || run.Error != nil || run.canceled() {
					t.Fatalf("nil error with run %+v", run)
				}
				return
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, c.APIKey) {
				t.Fatalf("error text: %q", msg)
			}
			var runErr *RunError
			if errors.As(err, &runErr) {
				checkRunErrorClean(t, runErr)
				if run == nil || !run.Done() || IsRetryable(err) {
					t.Fatalf("RunError %v for run %+v", err, run)
				}
			}
		})
	})
}

// TestRunRequestIDIsCleanedAndCapped: the poll's X-Request-ID reaches a
// RunError and a wait's error cleaned and capped like APIError.RequestID
// (128 bytes).
func TestRunRequestIDIsCleanedAndCapped(t *testing.T) {
	id := "req_\x1b[2J" + strings.Repeat("x", 1000)
	want := cleanHeaderValue(id) // as APIError.RequestID
	require.Equal(t, "req_[2J", want[:7])
	require.Equal(t, 128, len(want))

	base := &runBase{answers: []runAnswer{{body: `{"id":"run_1","status":"failed","error":{"code":"RUNTIME"}}`,
		header: []string{"X-Request-ID", id}}}}
	_, err := base.client(nil).WaitRun(t.Context(), "run_1")
	var runErr *RunError
	require.ErrorAs(t, err, &runErr)
	require.Equal(t, want, runErr.RequestID)

	synctest.Test(t, func(t *testing.T) {
		base := &runBase{answers: []runAnswer{{body: `{"id":"run_1","status":"running"}`,
			header: []string{"X-Request-ID", id, "Retry-After", "10"}}}}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := base.client(nil).WaitRun(ctx, "run_1")
		require.ErrorContains(t, err, "(request "+want+")")
		require.NotContains(t, err.Error(), "\x1b")
	})
}
