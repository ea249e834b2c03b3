// Tests of decoding a run: Run.UnmarshalJSON on real-looking payloads
// (testdata/runs) and on arbitrary input (FuzzRun), and Run.Done.

package neuracraft

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunUnmarshal(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	run := Run{ID: "run_old", Status: "failed", Error: &RunError{Message: "old"}, Output: json.RawMessage(`1`)}
	require.NoError(t, json.Unmarshal([]byte(`{"id":"run_new","status":"running"}`), &run))
	require.Empty(t, cmp.Diff(Run{ID: "run_new", Status: "running"}, run))

	// null leaves the run as it was, like encoding/json does.
	require.NoError(t, json.Unmarshal([]byte(`null`), &run))
	require.Equal(t, "run_new", run.ID)
}

func TestRunUnmarshalNotAnObject(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{`[]`, `"run_1"`, `5`, `true`, `[{"id":"run_1"}]`} {
		var run Run
		err := json.Unmarshal([]byte(doc), &run)
		require.Error(t, err, doc)
		require.Contains(t, err.Error(), "a run must be a JSON object")
	}
	var run Run
	require.Error(t, json.Unmarshal([]byte(`{"id":`), &run), "invalid JSON")
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
		require.Equal(t, (run.Error != nil), failed, "status %q, Error %v", run.Status, run.Error)
		if run.Error == nil {
			return
		}
		checkRunErrorClean(t, run.Error)
		require.True(t, errors.Is(run.Error, ErrRunFailed), "%v: wrong classification", run.Error)
		require.False(t, errors.Is(run.Error, ErrRunCanceled), "%v: wrong classification", run.Error)
		require.False(t, IsRetryable(run.Error), "%v: wrong classification", run.Error)
		require.False(t, errors.Is(run.Error, ErrNotFound), "%v matches an HTTP sentinel", run.Error)
		require.False(t, errors.Is(run.Error, ErrInternal), "%v matches an HTTP sentinel", run.Error)
		require.False(t, errors.Is(run.Error, ErrBadRequest), "%v matches an HTTP sentinel", run.Error)
	})
}
