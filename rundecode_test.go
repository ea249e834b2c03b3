// Tests of decoding a run (rundecode.go): Run.UnmarshalJSON on
// real-looking payloads (testdata/runs) and on arbitrary input (FuzzRun),
// and the cleaning and caps of a failed run's text.

package neuracraft

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// TestRunErrorTextIsCleanedAndCapped: the server's text reaches Error()
// as one line, Message at 300 characters like APIError.Message, Reason at
// 64, IDs at 128, Stack at 50 entries.
func TestRunErrorTextIsCleanedAndCapped(t *testing.T) {
	t.Parallel()
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
		assert.Equal(t, c.max, utf8.RuneCountInString(c.value), "%s: capped, the ellipsis within the cap", c.field)
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
		assert.Equal(t, maxMessage, utf8.RuneCountInString(f), "frame %d capped", i)
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

// TestDecodeStackCountsFrames: lines that clean to nothing (the empty
// line after a trailing newline, blank lines between frames, empty
// entries of an array) are no frames: a stack of 50 frames with them is
// kept whole, and the note of a longer one counts the frames left out.
func TestDecodeStackCountsFrames(t *testing.T) {
	frames := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("at f%d", i+1)
		}
		return out
	}
	str := func(lines []string, tail string) jsonValue {
		return jsonValue(strconv.Quote(strings.Join(lines, "\n") + tail))
	}
	for _, tc := range []struct {
		name string
		raw  jsonValue
		want []string
	}{
		{"50 lines and a trailing newline", str(frames(50), "\n"), frames(50)},
		{"50 lines and blank ones", str(frames(50), "\n\n \n\t\r\n"), frames(50)},
		{"60 lines and a trailing newline", str(frames(60), "\n"), append(frames(49), "… 11 more")},
		{"51 lines", str(frames(51), ""), append(frames(49), "… 2 more")},
		{"blank lines between", str([]string{"at f1", "", "  ", "at f2"}, "\n"), []string{"at f1", "at f2"}},
		{"an array with empty entries", jsonValue(`["at f1","","at f2"," "]`), []string{"at f1", "at f2"}},
		{"only blank lines", str([]string{"", " "}, "\n"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, decodeStack(tc.raw)); diff != "" {
				t.Errorf("decodeStack (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeStackAllocations: however many entries a stack has, decoding
// it allocates what it keeps (50 frames, a note and the slice; for one
// string, the string, decoded), at most twice the stack's bytes, not a
// copy of every entry: a 10 MiB answer cost 40 times that before.
func TestDecodeStackAllocations(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name string
		raw  string
	}{
		{"an array of numbers", "[" + strings.Repeat("1,", n) + "1]"},
		{"an array of strings", "[" + strings.Repeat(`"at f",`, n) + `"at f"]`},
		{"an array of blank strings", "[" + strings.Repeat(`"",`, n) + `"at f"]`},
		{"one string of lines", strconv.Quote(strings.Repeat("at f\n", n))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := jsonValue(tc.raw)
			allocs := testing.AllocsPerRun(5, func() { decodeStack(raw) })
			assert.LessOrEqual(t, allocs, float64(maxStackFrames+10), "allocations for %d entries", n)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			decodeStack(raw)
			runtime.ReadMemStats(&after)
			assert.LessOrEqual(t, after.TotalAlloc-before.TotalAlloc, uint64(2*len(raw)+64<<10),
				"bytes allocated for %d entries (%d bytes of stack)", n, len(raw))
		})
	}
	frames := decodeStack(jsonValue("[" + strings.Repeat(`"at f",`, n) + `"at f"]`))
	require.Len(t, frames, maxStackFrames)
	assert.Equal(t, fmt.Sprintf("… %d more", n+1-maxStackFrames+1), frames[maxStackFrames-1])
}

// mustTime parses s as RFC 3339.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

// must returns v, and panics on err: for values a test cannot do without.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
