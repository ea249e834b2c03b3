// This file holds pipeline runs: RunScript, how a run of the fake behaves,
// and the handlers that start, read and cancel runs.

package neuracrafttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Final statuses of a run.
const (
	runCompleted = "completed"
	runFailed    = "failed"
	runCanceled  = "cancelled" // the API's spelling, on the wire
)

// A RunScript says how the runs of a pipeline behave on the fake server:
// the statuses they read back, GET after GET (a HEAD peeks and changes
// nothing), before they end, whether
// those polls carry a Retry-After, and how they end. Build one with
// [RunCompleted], [RunFailed] or [RunCanceled], add the polls before the
// end with [RunScript.WithPolls], and give it to [Server.ScriptRuns]:
//
//	srv.ScriptRuns(pipelineID, neuracrafttest.RunFailed(8102, "invalid template").
//		WithPolls("queued", 1).WithPolls("running", 2).WithPluginID("pdf-export-1"))
//
// The zero RunScript completes at its first read, with no output. A
// RunScript is a value: its methods return copies and never modify the
// receiver, so one RunScript may be given to many ScriptRuns calls.
type RunScript struct {
	polls      []runPhase
	end        string // "" means completed
	output     json.RawMessage
	code       any
	message    string
	pluginID   string
	stack      []string
	retryAfter string
}

// runPhase is a status that a run reads back for n polls.
type runPhase struct {
	status string
	n      int
}

// defaultRunScript is how a run behaves without a script: queued at its
// first read, running at its second, completed with an output from its
// third.
var defaultRunScript = RunCompleted(map[string]any{"result": "ok", "records_processed": 42}).
	WithPolls("queued", 1).WithPolls("running", 1)

// RunCompleted returns a script whose runs end "completed" with output,
// encoded as JSON, as the run's "output"; a nil output sends none.
// RunCompleted panics if output cannot be encoded as JSON.
func RunCompleted(output any) RunScript {
	var raw json.RawMessage
	if output != nil {
		b, err := json.Marshal(output)
		if err != nil {
			panic("neuracrafttest: RunCompleted: cannot encode output: " + err.Error())
		}
		raw = b
	}
	return RunScript{end: runCompleted, output: raw}
}

// RunFailed returns a script whose runs end "failed" with the error
// {"code": code, "message": message}. The code is normally a plugin code
// such as 8102 (an int, or a numeric string such as "8102") or a string
// code such as "TIMEOUT", "VALIDATION", "RUNTIME" or "CUSTOM"; any other
// value is encoded as JSON as it is, and nil sends no code. Name the
// failed plugin instance with [RunScript.WithPluginID] and add a stack
// with [RunScript.WithStack]. RunFailed panics if code cannot be encoded
// as JSON.
func RunFailed(code any, message string) RunScript {
	if _, err := json.Marshal(code); err != nil {
		panic("neuracrafttest: RunFailed: cannot encode code: " + err.Error())
	}
	return RunScript{end: runFailed, code: code, message: message}
}

// RunCanceled returns a script whose runs end "cancelled" (the API's
// spelling of the status) by themselves, as if someone else had canceled
// them.
func RunCanceled() RunScript {
	return RunScript{end: runCanceled}
}

// WithPolls returns a copy of r whose runs read back status for n more
// polls before they end (or before the polls of a later WithPolls). The
// status is sent as given, so it may be "queued", "running" or a status
// a client does not know. WithPolls panics if n is negative.
func (r RunScript) WithPolls(status string, n int) RunScript {
	if n < 0 {
		panic(fmt.Sprintf("neuracrafttest: WithPolls: negative count %d", n))
	}
	if n == 0 {
		return r
	}
	r.polls = append(append([]runPhase(nil), r.polls...), runPhase{status, n})
	return r
}

// WithRetryAfter returns a copy of r whose runs answer every poll before
// their end with the header Retry-After: v, sent as given (delay-seconds,
// an HTTP-date or something malformed). An empty v sends none.
func (r RunScript) WithRetryAfter(v string) RunScript {
	r.retryAfter = v
	return r
}

// WithPluginID returns a copy of r whose failed runs name the plugin
// instance id ("plugin_id") in their error. It changes nothing for runs
// that do not fail.
func (r RunScript) WithPluginID(id string) RunScript {
	r.pluginID = id
	return r
}

// WithStack returns a copy of r whose failed runs send lines as their
// error's "stack". It changes nothing for runs that do not fail.
func (r RunScript) WithStack(lines ...string) RunScript {
	r.stack = append([]string(nil), lines...)
	return r
}

// ScriptRuns makes every run of the pipeline pipelineID started from now
// on behave as script says, replacing an earlier script for the same
// pipeline; runs already started keep theirs. A pipelineID of "*" scripts
// the runs of every pipeline that has no script of its own. Runs of a
// pipeline without a script read "queued", then "running", then
// "completed" with an output. ScriptRuns panics if pipelineID is empty.
func (s *Server) ScriptRuns(pipelineID string, script RunScript) {
	if pipelineID == "" {
		panic("neuracrafttest: ScriptRuns: empty pipeline ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runScripts == nil {
		s.runScripts = make(map[string]RunScript)
	}
	s.runScripts[pipelineID] = script
}

// scriptFor returns the script of a new run of pipelineID. s.mu is held.
func (s *Server) scriptFor(pipelineID string) RunScript {
	if sc, ok := s.runScripts[pipelineID]; ok {
		return sc
	}
	if sc, ok := s.runScripts["*"]; ok {
		return sc
	}
	return defaultRunScript
}

// A run is one pipeline run. Its status advances with each read.
type run struct {
	id          string
	pipelineID  string
	script      RunScript
	startedAt   string
	completedAt string // set when the run is first read ended, or is canceled
	reads       int
	canceled    bool
}

// ended reports whether the run has been canceled or read ended.
func (r *run) ended() bool { return r.completedAt != "" }

// read advances the run by one read and returns what that read sees, and
// the Retry-After to send with it.
func (r *run) read(now time.Time) (runView, string) {
	r.reads++
	v := runView{ID: r.id, PipelineID: r.pipelineID, StartedAt: r.startedAt}
	if r.canceled {
		v.Status, v.CompletedAt = runCanceled, r.completedAt
		return v, ""
	}
	n := r.reads
	for _, p := range r.script.polls {
		if n <= p.n {
			v.Status = p.status
			return v, r.script.retryAfter
		}
		n -= p.n
	}
	if r.completedAt == "" {
		r.completedAt = now.UTC().Format(time.RFC3339)
	}
	v.CompletedAt = r.completedAt
	switch r.script.end {
	case runFailed:
		v.Status = runFailed
		v.Error = &runViewError{Code: r.script.code, Message: r.script.message,
			PluginID: r.script.pluginID, Stack: r.script.stack}
	case runCanceled:
		v.Status = runCanceled
	default:
		v.Status, v.Output = runCompleted, r.script.output
	}
	return v, ""
}

// runView is the run document that GET /runs/{run_id} answers.
type runView struct {
	ID          string          `json:"id"`
	PipelineID  string          `json:"pipeline_id"`
	Status      string          `json:"status"`
	Output      json.RawMessage `json:"output,omitempty"`
	Error       *runViewError   `json:"error,omitempty"`
	StartedAt   string          `json:"started_at"`
	CompletedAt string          `json:"completed_at,omitempty"`
}

// runViewError is a failed run's "error".
type runViewError struct {
	Code     any      `json:"code,omitempty"`
	Message  string   `json:"message"`
	PluginID string   `json:"plugin_id,omitempty"`
	Stack    []string `json:"stack,omitempty"`
}

// startRun serves POST /pipelines/{id}/run. A body, when present, must be a
// JSON object; it is not used.
func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	if _, ok := readJSONObject(w, r, true); !ok {
		return
	}
	pid := r.PathValue("id")
	rn := &run{id: "run_" + randomHex(6), pipelineID: pid, startedAt: time.Now().UTC().Format(time.RFC3339)}
	s.mu.Lock()
	_, ok := s.pipelines[pid]
	if ok {
		rn.script = s.scriptFor(pid)
		s.runs[rn.id] = rn
	}
	s.mu.Unlock()
	if !ok {
		writeNotFound(w)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{
		"run_id":      rn.id,
		"status":      "queued",
		"monitor_url": s.URL + "/runs/" + rn.id,
	})
}

// getRun serves GET /runs/{run_id}. Each GET advances the run (see
// run.read); a HEAD answers what the next GET would, and leaves the run
// as it was.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rn, ok := s.runs[r.PathValue("run_id")]
	var (
		v          runView
		retryAfter string
	)
	if ok {
		read := rn
		if r.Method == http.MethodHead {
			peek := *rn // a copy: its read changes nothing of the run
			read = &peek
		}
		v, retryAfter = read.read(time.Now())
	}
	s.mu.Unlock()
	if !ok {
		writeNotFound(w)
		return
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, http.StatusOK, v)
}

// cancelRun serves POST /runs/{run_id}/cancel. Canceling a run that has
// already ended is accepted and leaves it as it ended.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	if _, ok := readJSONObject(w, r, true); !ok {
		return
	}
	s.mu.Lock()
	rn, ok := s.runs[r.PathValue("run_id")]
	if ok && !rn.ended() {
		rn.canceled = true
		rn.completedAt = time.Now().UTC().Format(time.RFC3339)
	}
	s.mu.Unlock()
	if !ok {
		writeNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "cancellation_requested"})
}
