package neuracrafttest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestRunDocument: the default run, read as the API's run document.
func TestRunDocument(t *testing.T) {
	t.Parallel()
	e := newRunEnv(t)
	rid := e.start(e.pid)
	var startedAt string
	view := func(status string, extra map[string]any) map[string]any {
		m := map[string]any{"id": rid, "pipeline_id": e.pid, "status": status, "started_at": startedAt}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	doc, retryAfter := e.poll(rid)
	startedAt, _ = doc["started_at"].(string)
	started, err := time.Parse(time.RFC3339, startedAt)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), started, time.Minute)
	require.Empty(t, cmp.Diff(view("queued", nil), doc))
	require.Empty(t, retryAfter)

	doc, _ = e.poll(rid)
	require.Empty(t, cmp.Diff(view("running", nil), doc))

	doc, _ = e.poll(rid)
	completedAt, _ := doc["completed_at"].(string)
	completed, err := time.Parse(time.RFC3339, completedAt)
	require.NoError(t, err)
	require.False(t, completed.Before(started))
	output := map[string]any{"result": "ok", "records_processed": float64(42)}
	require.Empty(t, cmp.Diff(view("completed", map[string]any{"output": output, "completed_at": completedAt}), doc))

	doc, _ = e.poll(rid)
	require.Empty(t, cmp.Diff(view("completed", map[string]any{"output": output, "completed_at": completedAt}), doc),
		"an ended run reads the same")
}

// TestRunScripts: each script's runs read back what it says, poll after
// poll.
func TestRunScripts(t *testing.T) {
	t.Parallel()
	type read struct {
		status     string
		retryAfter string
		extra      map[string]any // members besides id, pipeline_id, status, started_at, completed_at
	}
	failed := func(errorObject map[string]any) read {
		return read{status: "failed", extra: map[string]any{"error": errorObject}}
	}
	tests := []struct {
		name   string
		script RunScript
		want   []read
	}{
		{"zero script", RunScript{}, []read{{status: "completed"}, {status: "completed"}}},
		{"completed with output after polls",
			RunCompleted(map[string]any{"pages": 3}).WithPolls("queued", 2).WithPolls("running", 1),
			[]read{{status: "queued"}, {status: "queued"}, {status: "running"},
				{status: "completed", extra: map[string]any{"output": map[string]any{"pages": float64(3)}}}}},
		{"completed without output", RunCompleted(nil), []read{{status: "completed"}}},
		{"unknown status", RunCompleted(nil).WithPolls("paused", 1), []read{{status: "paused"}, {status: "completed"}}},
		{"zero polls add nothing", RunCompleted(nil).WithPolls("queued", 0), []read{{status: "completed"}}},
		{"Retry-After on the polls before the end",
			RunCompleted(nil).WithPolls("running", 2).WithRetryAfter("2"),
			[]read{{status: "running", retryAfter: "2"}, {status: "running", retryAfter: "2"}, {status: "completed"}}},
		{"Retry-After as a date", RunCompleted(nil).WithPolls("queued", 1).WithRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"),
			[]read{{status: "queued", retryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"}, {status: "completed"}}},
		{"failed with a plugin code",
			RunFailed(8102, "PDF Export Plugin: Failed to generate document due to invalid template.").
				WithPolls("running", 1).WithPluginID("pdf-export-1"),
			[]read{{status: "running"}, failed(map[string]any{"code": float64(8102),
				"message": "PDF Export Plugin: Failed to generate document due to invalid template.", "plugin_id": "pdf-export-1"})}},
		{"failed with a numeric string code", RunFailed("8102", "invalid template"),
			[]read{failed(map[string]any{"code": "8102", "message": "invalid template"})}},
		{"failed with a string code and a stack",
			RunFailed("TIMEOUT", "Step exceeded 30s").WithPluginID("http-1").WithStack("at call (http.js:88)", "at run (step.js:41)"),
			[]read{failed(map[string]any{"code": "TIMEOUT", "message": "Step exceeded 30s", "plugin_id": "http-1",
				"stack": []any{"at call (http.js:88)", "at run (step.js:41)"}})}},
		{"failed without a code", RunFailed(nil, "boom"), []read{failed(map[string]any{"message": "boom"})}},
		{"canceled by itself", RunCanceled().WithPolls("running", 1), []read{{status: "running"}, {status: "cancelled"}, {status: "cancelled"}}},
		{"plugin ID and stack only for failures", RunCompleted(nil).WithPluginID("p").WithStack("s"), []read{{status: "completed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newRunEnv(t)
			e.srv.ScriptRuns(e.pid, tt.script)
			rid := e.start(e.pid)
			for i, w := range tt.want {
				doc, retryAfter := e.poll(rid)
				want := map[string]any{"id": rid, "pipeline_id": e.pid, "status": w.status, "started_at": doc["started_at"]}
				if w.status == "completed" || w.status == "failed" || w.status == "cancelled" {
					require.NotEmpty(t, doc["completed_at"], "read %d", i+1)
					want["completed_at"] = doc["completed_at"]
				}
				for k, v := range w.extra {
					want[k] = v
				}
				require.Empty(t, cmp.Diff(want, doc), "read %d", i+1)
				require.Equal(t, w.retryAfter, retryAfter, "read %d", i+1)
			}
		})
	}
}

// TestRunScriptIsAValue: With... return copies; a script may be reused.
func TestRunScriptIsAValue(t *testing.T) {
	t.Parallel()
	base := RunCompleted(nil).WithPolls("queued", 1)
	a := base.WithPolls("running", 1)
	b := base.WithPolls("paused", 1).WithRetryAfter("5")
	lines := []string{"at a"}
	c := RunFailed("RUNTIME", "x").WithStack(lines...)
	lines[0] = "changed"

	e := newRunEnv(t)
	pb, pc := e.createPipeline("b"), e.createPipeline("c")
	e.srv.ScriptRuns(e.pid, a)
	e.srv.ScriptRuns(pb, b)
	e.srv.ScriptRuns(pc, c)
	require.Equal(t, []string{"queued", "running", "completed"}, e.statuses(e.start(e.pid), 3))
	require.Equal(t, []string{"queued", "paused", "completed"}, e.statuses(e.start(pb), 3))
	e.srv.ScriptRuns(pb, base)
	rid := e.start(pb)
	doc, retryAfter := e.poll(rid)
	require.Equal(t, "queued", doc["status"])
	require.Empty(t, retryAfter, "base did not get b's Retry-After")
	require.Equal(t, []string{"completed"}, e.statuses(rid, 1))
	doc, _ = e.poll(e.start(pc))
	require.Equal(t, []any{"at a"}, doc["error"].(map[string]any)["stack"], "WithStack copied its lines")
}

func TestScriptRuns(t *testing.T) {
	t.Parallel()
	e := newRunEnv(t)
	other := e.createPipeline("b")
	third := e.createPipeline("c")

	before := e.start(e.pid) // started before any script: the default
	e.srv.ScriptRuns("*", RunCanceled())
	e.srv.ScriptRuns(e.pid, RunFailed("CUSTOM", "no"))
	require.Equal(t, []string{"failed"}, e.statuses(e.start(e.pid), 1), "the pipeline's own script")
	require.Equal(t, []string{"cancelled"}, e.statuses(e.start(other), 1), `"*" for the others`)
	require.Equal(t, []string{"queued", "running", "completed"}, e.statuses(before, 3), "a started run keeps its script")

	e.srv.ScriptRuns(e.pid, RunCompleted(nil))
	require.Equal(t, []string{"completed"}, e.statuses(e.start(e.pid), 1), "a later script replaces")
	require.Equal(t, []string{"cancelled"}, e.statuses(e.start(third), 1))

	// A script may name a pipeline that does not exist yet.
	e.srv.ScriptRuns("pipe_later", RunFailed(8102, "x"))
	requireError(t, e.do("POST", "/pipelines/pipe_later/run", nil), 404, "not_found")
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	e := newRunEnv(t)
	t.Run("while queued", func(t *testing.T) {
		rid := e.start(e.pid)
		require.Equal(t, []string{"queued"}, e.statuses(rid, 1))
		e.cancel(rid)
		doc, retryAfter := e.poll(rid)
		require.Empty(t, cmp.Diff(map[string]any{"id": rid, "pipeline_id": e.pid, "status": "cancelled",
			"started_at": doc["started_at"], "completed_at": doc["completed_at"]}, doc))
		require.NotEmpty(t, doc["completed_at"])
		require.Empty(t, retryAfter)
		require.Equal(t, []string{"cancelled"}, e.statuses(rid, 1))
	})
	t.Run("before any read", func(t *testing.T) {
		rid := e.start(e.pid)
		e.cancel(rid)
		require.Equal(t, []string{"cancelled"}, e.statuses(rid, 1))
	})
	t.Run("a scripted run in the middle of its polls", func(t *testing.T) {
		e.srv.ScriptRuns(e.pid, RunFailed(8102, "x").WithPolls("running", 5).WithRetryAfter("1"))
		rid := e.start(e.pid)
		require.Equal(t, []string{"running", "running"}, e.statuses(rid, 2))
		e.cancel(rid)
		require.Equal(t, []string{"cancelled", "cancelled"}, e.statuses(rid, 2))
	})
	t.Run("after the end, the run stays as it ended", func(t *testing.T) {
		e.srv.ScriptRuns(e.pid, RunFailed(8102, "x"))
		rid := e.start(e.pid)
		require.Equal(t, []string{"failed"}, e.statuses(rid, 1))
		e.cancel(rid)
		require.Equal(t, []string{"failed"}, e.statuses(rid, 1))

		e.srv.ScriptRuns(e.pid, RunCompleted(nil))
		rid = e.start(e.pid)
		require.Equal(t, []string{"completed"}, e.statuses(rid, 1))
		e.cancel(rid)
		require.Equal(t, []string{"completed"}, e.statuses(rid, 1))
	})
	t.Run("runs outlive their pipeline", func(t *testing.T) {
		e.srv.ScriptRuns(e.pid, RunCompleted(nil).WithPolls("queued", 1))
		other := e.createPipeline("b")
		rid := e.start(other)
		require.Equal(t, http.StatusOK, e.do("DELETE", "/pipelines/"+other, nil).status)
		require.Equal(t, []string{"queued"}, e.statuses(rid, 1))
	})
}

func TestRunRouteErrors(t *testing.T) {
	t.Parallel()
	e := newRunEnv(t)
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   string
	}{
		{"unknown pipeline", "POST", "/pipelines/pipe_unknown/run", "", 404, "not_found"},
		{"unknown run", "GET", "/runs/run_unknown", "", 404, "not_found"},
		{"cancel unknown run", "POST", "/runs/run_unknown/cancel", "", 404, "not_found"},
		{"bad run body", "POST", "/pipelines/" + e.pid + "/run", "[1]", 400, "invalid_request"},
		{"bad cancel body", "POST", "/runs/run_unknown/cancel", "nope", 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireError(t, e.do(tt.method, tt.path, strings.NewReader(tt.body)), tt.status, tt.code)
		})
	}

	// A faulted read does not advance the run.
	rid := e.start(e.pid)
	e.srv.Fail("GET /runs/{run_id}", 1, Error(503, "service_unavailable", "down"))
	requireError(t, e.do("GET", "/runs/"+rid, nil), 503, "service_unavailable")
	require.Equal(t, []string{"queued"}, e.statuses(rid, 1))
}

func TestRunScriptPanics(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	defer srv.Close()
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"empty pipeline", func() { srv.ScriptRuns("", RunCompleted(nil)) }, "neuracrafttest: ScriptRuns: empty pipeline ID"},
		{"negative polls", func() { RunCompleted(nil).WithPolls("queued", -1) }, "neuracrafttest: WithPolls: negative count -1"},
		{"output not JSON", func() { RunCompleted(func() {}) },
			"neuracrafttest: RunCompleted: cannot encode output: json: unsupported type: func()"},
		{"code not JSON", func() { RunFailed(make(chan int), "x") },
			"neuracrafttest: RunFailed: cannot encode code: json: unsupported type: chan int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.PanicsWithValue(t, tt.want, tt.f)
		})
	}
}

// TestRunHeadDoesNotAdvance: a HEAD to a run answers as the next GET
// would (its Retry-After), and the GETs that follow read the run's
// statuses as if no HEAD had come.
func TestRunHeadDoesNotAdvance(t *testing.T) {
	t.Parallel()
	e := newRunEnv(t)
	rid := e.start(e.pid)
	for range 5 {
		r := e.do("HEAD", "/runs/"+rid, nil)
		require.Equal(t, http.StatusOK, r.status)
		require.Empty(t, r.body, "a HEAD has no body")
	}
	require.Equal(t, []string{"queued", "running", "completed"}, e.statuses(rid, 3))
}
