// This file holds pipeline runs: Run, RunError and its sentinels, and the
// Client methods that start, read, wait for and cancel a run.

package neuracraft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The sentinel errors of a run that ended without completing. A
// [*RunError] matches exactly one of them.
var (
	ErrRunFailed   = errors.New("neuracraft: run failed")    // the run ended "failed"
	ErrRunCanceled = errors.New("neuracraft: run cancelled") // the run ended "cancelled" (or "canceled")
)

// The pacing of [Client.WaitRun] between two polls that carry no
// Retry-After: full jitter, up to runPollBase after the first poll,
// doubling at each poll, capped at runPollMax. A poll's Retry-After is
// honoured up to runPollMaxRetryAfter.
const (
	runPollBase          = time.Second
	runPollMax           = 30 * time.Second
	runPollMaxRetryAfter = DefaultMaxRetryAfter // 60 s
)

// Caps on the server's text kept in a RunError (Message uses maxMessage,
// like APIError.Message).
const (
	maxRunID       = 128 // runes of RunID, PluginID and RequestID
	maxRunReason   = 64  // runes of Reason and of a status in an error
	maxStackFrames = 50  // entries of Stack
)

// Run is a pipeline run as the API reports it: what [Client.StartRun]
// gets back (ID, Status "queued", MonitorURL) or what [Client.GetRun]
// reads. Fields the API did not send are zero.
//
// A Run decodes from the API's run document with encoding/json, leniently:
// a field of the wrong type is left zero rather than failing the whole
// document (see [Run.UnmarshalJSON]).
type Run struct {
	// ID identifies the run, such as "run_def456": the document's "id",
	// else its "run_id".
	ID string
	// PipelineID is the pipeline the run belongs to.
	PipelineID string
	// Status is the run's status as sent: "queued", "running",
	// "completed", "failed", "cancelled", or a status this package does
	// not know. [Run.Done] says whether it is final.
	Status string
	// Output is the run's "output" as sent (a completed run's result), or
	// nil when it has none.
	Output json.RawMessage
	// Error is why the run failed. It is non-nil exactly when Status is
	// "failed" (in any case), even when the document sent no details.
	Error *RunError
	// MonitorURL is where the run can be read: an absolute URL under the
	// API's base URL, which [Client.Do] accepts as a path.
	MonitorURL string
	// StartedAt and CompletedAt are the document's "started_at" and
	// "completed_at" (RFC 3339); zero when absent or not a valid time.
	StartedAt   time.Time
	CompletedAt time.Time
}

// Done reports whether the run has ended: its status is "completed",
// "failed", "cancelled" or "canceled", in any case. Any other status,
// including one this package does not know, means the run may still
// change. Done is false for a nil Run.
func (r *Run) Done() bool {
	if r == nil {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(r.Status)) {
	case "completed", "failed", "cancelled", "canceled":
		return true
	}
	return false
}

// canceled reports whether the run ended cancelled.
func (r *Run) canceled() bool {
	s := strings.ToLower(strings.TrimSpace(r.Status))
	return s == "cancelled" || s == "canceled"
}

// end is the error of a run that has ended: nil for a completed run,
// r.Error for a failed one, a *RunError matching ErrRunCanceled for a
// cancelled one. requestID names the poll that saw the end.
func (r *Run) end(requestID string) error {
	switch {
	case r.Error != nil:
		return r.Error
	case r.canceled():
		return &RunError{RunID: cleanText(r.ID, maxRunID), Canceled: true, RequestID: requestID}
	}
	return nil
}

// runDocument is the API's run document. Every field is raw so that a
// field of the wrong type spoils only itself.
type runDocument struct {
	ID          json.RawMessage `json:"id"`
	RunID       json.RawMessage `json:"run_id"`
	PipelineID  json.RawMessage `json:"pipeline_id"`
	Status      json.RawMessage `json:"status"`
	Output      json.RawMessage `json:"output"`
	Error       json.RawMessage `json:"error"`
	MonitorURL  json.RawMessage `json:"monitor_url"`
	StartedAt   json.RawMessage `json:"started_at"`
	CompletedAt json.RawMessage `json:"completed_at"`
}

// runErrorDocument is the "error" object of a failed run, as the manual's
// execution log gives it.
type runErrorDocument struct {
	Code          json.RawMessage `json:"code"`
	Message       json.RawMessage `json:"message"`
	PluginID      json.RawMessage `json:"plugin_id"`
	PluginIDCamel json.RawMessage `json:"pluginId"`
	Stack         json.RawMessage `json:"stack"`
}

// UnmarshalJSON decodes the API's run document into r, replacing what r
// held:
//
//	{"id": "run_def456", "pipeline_id": "pipe_abc123", "status": "failed",
//	 "error": {"code": 8102, "message": "...", "plugin_id": "pdf-export-1"},
//	 "started_at": "2023-11-15T10:00:00Z", "completed_at": "2023-11-15T10:00:04Z"}
//
// A failed run's "error" may carry a plugin code (a number, or a numeric
// string such as "8102"), a string code ("TIMEOUT"), a "message", the
// failed plugin instance ("plugin_id" or "pluginId") and a "stack" (an
// array of strings, or one string); an "error" that is a plain string is
// taken as the message. Fields of the wrong type are left zero, and the
// text kept in [Run.Error] is cleaned and capped (see [RunError]). It
// fails only when data is not a JSON object; null leaves r unchanged.
func (r *Run) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	var doc runDocument
	if len(data) == 0 || data[0] != '{' {
		return errors.New("a run must be a JSON object")
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	*r = Run{
		ID:          jsonString(doc.ID),
		PipelineID:  jsonString(doc.PipelineID),
		Status:      jsonString(doc.Status),
		MonitorURL:  jsonString(doc.MonitorURL),
		StartedAt:   jsonTime(doc.StartedAt),
		CompletedAt: jsonTime(doc.CompletedAt),
	}
	if r.ID == "" {
		r.ID = jsonString(doc.RunID)
	}
	if len(doc.Output) > 0 && string(doc.Output) != "null" {
		r.Output = doc.Output
	}
	if strings.EqualFold(strings.TrimSpace(r.Status), "failed") {
		r.Error = decodeRunError(doc.Error)
		r.Error.RunID = cleanText(r.ID, maxRunID)
	}
	return nil
}

// decodeRunError decodes a failed run's "error", whatever its shape.
func decodeRunError(raw json.RawMessage) *RunError {
	e := &RunError{}
	if len(raw) == 0 {
		return e
	}
	switch raw[0] {
	case '"':
		e.Message = cleanText(jsonString(raw), maxMessage)
	case '{':
		var doc runErrorDocument
		if json.Unmarshal(raw, &doc) != nil {
			return e
		}
		e.Code, e.Reason = runErrorCode(doc.Code)
		e.Message = cleanText(jsonString(doc.Message), maxMessage)
		e.PluginID = jsonString(doc.PluginID)
		if e.PluginID == "" {
			e.PluginID = jsonString(doc.PluginIDCamel)
		}
		e.PluginID = cleanText(e.PluginID, maxRunID)
		e.Stack = decodeStack(doc.Stack)
	}
	return e
}

// runErrorCode reads a run error's code: a plugin code (a number or a
// numeric string in 8000-8999), else the code as sent, cleaned, as the
// reason ("TIMEOUT", or a number that is not a plugin code).
func runErrorCode(raw json.RawMessage) (Code, string) {
	if len(raw) == 0 {
		return 0, ""
	}
	var text string
	switch c := raw[0]; {
	case c == '"':
		text = strings.TrimSpace(jsonString(raw))
	case c == '-' || (c >= '0' && c <= '9'):
		text = string(raw)
	default: // null, true, an object, ...
		return 0, ""
	}
	if n, err := strconv.Atoi(text); err == nil && Code(n).IsPlugin() {
		return Code(n), ""
	}
	return 0, cleanText(text, maxRunReason)
}

// decodeStack reads a stack, an array of strings or one string of lines,
// cleaning each entry and keeping at most maxStackFrames of them; when it
// cuts, the last entry says how many were left out.
func decodeStack(raw json.RawMessage) []string {
	var lines []string
	switch {
	case len(raw) == 0:
		return nil
	case raw[0] == '"':
		lines = strings.Split(jsonString(raw), "\n")
	case raw[0] == '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		lines = make([]string, len(items))
		for i, item := range items {
			lines[i] = jsonString(item)
		}
	default:
		return nil
	}
	stack := make([]string, 0, min(len(lines), maxStackFrames))
	for i, l := range lines {
		if len(stack) == maxStackFrames {
			stack[maxStackFrames-1] = "… " + strconv.Itoa(len(lines)-i+1) + " more"
			break
		}
		if l = cleanText(l, maxMessage); l != "" {
			stack = append(stack, l)
		}
	}
	if len(stack) == 0 {
		return nil
	}
	return stack
}

// jsonString returns raw as a string, or "" when it is not a JSON string.
func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// jsonTime returns raw as an RFC 3339 time, or the zero time.
func jsonTime(raw json.RawMessage) time.Time {
	t, err := time.Parse(time.RFC3339, jsonString(raw))
	if err != nil {
		return time.Time{}
	}
	return t
}

// RunError is a run that ended without completing: it failed, or it was
// cancelled. [Client.WaitRun] returns it as its error, and [Run.Error]
// holds it for a failed run. Test it with [errors.Is] against
// [ErrRunFailed] or [ErrRunCanceled], a plugin's [Code] (Code(8102)) or
// [ErrPlugin], and reach its fields with [errors.As].
//
// A RunError never matches an HTTP sentinel such as [ErrNotFound] or
// [ErrInternal]: the calls succeeded, the run did not. [IsRetryable]
// reports false for it: whether to start the run again is the caller's
// decision.
//
// Text from the server is cleaned to one line and capped: Message at 300
// characters, like APIError.Message; Reason at 64; RunID, PluginID and
// RequestID at 128; Stack at 50 entries of 300 characters. Error prints
// no Stack.
type RunError struct {
	// RunID is the run's ID.
	RunID string
	// Canceled reports a run that was cancelled rather than failed: the
	// error then matches ErrRunCanceled instead of ErrRunFailed, and the
	// fields below, RequestID excepted, are empty.
	Canceled bool
	// Code is the plugin code (8000-8999) of the run's error, when it
	// carries one (as a number or a numeric string), else zero.
	Code Code
	// Reason is the run error's code when it is not a plugin code: a
	// string code such as "TIMEOUT", "VALIDATION", "RUNTIME" or "CUSTOM"
	// (or another number, as sent).
	Reason string
	// Message is the run error's message.
	Message string
	// PluginID is the pipeline's plugin instance that failed, such as
	// "pdf-export-1", when the API names it.
	PluginID string
	// Stack is the failed step's stack, when the API sends one: at most
	// 50 entries, the last of which says how many were left out.
	Stack []string
	// RequestID is the X-Request-ID of the poll that saw the run end.
	RequestID string
}

// Error returns one line: the run, how it ended, its code, reason and
// message, then the plugin and the request, as in
//
//	neuracraft: run run_def456: failed: 8102 PDF Export Failed: invalid template (plugin pdf-export-1, request req_abc123)
func (e *RunError) Error() string {
	var b strings.Builder
	b.WriteString("neuracraft: run ")
	if e.RunID != "" {
		b.WriteString(e.RunID)
		b.WriteString(": ")
	}
	if e.Canceled {
		b.WriteString("cancelled")
	} else {
		b.WriteString("failed")
	}
	if e.Code != 0 {
		b.WriteString(": ")
		b.WriteString(e.Code.String())
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	var notes []string
	if e.PluginID != "" {
		notes = append(notes, "plugin "+e.PluginID)
	}
	if e.RequestID != "" {
		notes = append(notes, "request "+e.RequestID)
	}
	if len(notes) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(notes, ", "))
		b.WriteByte(')')
	}
	return b.String()
}

// Format prints Error() for every verb (%v, %+v, %#v, %s, and %q quoted),
// so that formatting a RunError never dumps its Stack.
func (e *RunError) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", e.Error())
		return
	}
	io.WriteString(f, e.Error())
}

// LogValue implements [slog.LogValuer]: the error as a group of its run
// ID, outcome, code, reason, message, plugin and request ID. Stack is
// left out.
func (e *RunError) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("run_id", e.RunID))
	if e.Canceled {
		attrs = append(attrs, slog.Bool("canceled", true))
	}
	if e.Code != 0 {
		attrs = append(attrs, slog.Int("code", int(e.Code)))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Message != "" {
		attrs = append(attrs, slog.String("message", e.Message))
	}
	if e.PluginID != "" {
		attrs = append(attrs, slog.String("plugin_id", e.PluginID))
	}
	if e.RequestID != "" {
		attrs = append(attrs, slog.String("request_id", e.RequestID))
	}
	return slog.GroupValue(attrs...)
}

// Is reports whether target is ErrRunFailed (for a failed run),
// ErrRunCanceled (for a cancelled one), e's plugin code, or a sentinel
// that classifies the plugin code (ErrPlugin). A code that is not a
// plugin code matches nothing.
func (e *RunError) Is(target error) bool {
	switch target {
	case ErrRunFailed:
		return !e.Canceled
	case ErrRunCanceled:
		return e.Canceled
	}
	if !e.Code.IsPlugin() {
		return false
	}
	if c, ok := target.(Code); ok {
		return c == e.Code
	}
	return e.Code.Is(target)
}

// StartRun starts a run of the pipeline pipelineID (POST
// /pipelines/{id}/run) and returns it as the API acknowledged it: ID,
// Status (normally "queued"), MonitorURL and PipelineID. A non-nil input
// is sent as the JSON request body as it is; nil sends no body. Pass the
// run's ID to [Client.WaitRun] or [Client.GetRun].
//
// Errors are those of [Client.Do], and an error naming the request when
// the answer has no run ID. Being a POST, the start is retried by the
// Transport only after 429 or 503, never after a 500.
func (c *Client) StartRun(ctx context.Context, pipelineID string, input any) (*Run, error) {
	if err := checkID("POST /pipelines/{id}/run", "pipeline", pipelineID); err != nil {
		return nil, err
	}
	path := "/pipelines/" + url.PathEscape(pipelineID) + "/run"
	run := new(Run)
	resp, err := c.Do(ctx, http.MethodPost, path, input, run)
	if err != nil {
		return nil, err
	}
	if run.ID == "" {
		run.ID = resp.TaskID
	}
	if run.ID == "" {
		if u, err := c.resolve(path); err == nil {
			path = u.EscapedPath()
		}
		return nil, fmt.Errorf("neuracraft: POST %s: %d %s (request %s): the answer names no run",
			path, resp.StatusCode, http.StatusText(resp.StatusCode), cleanText(resp.RequestID, maxRunID))
	}
	if run.PipelineID == "" {
		run.PipelineID = pipelineID
	}
	if run.MonitorURL == "" {
		run.MonitorURL = resp.MonitorURL
	}
	return run, nil
}

// GetRun reads the run runID once (GET /runs/{run_id}). A run that failed
// is a successful read: its Run.Error says why, and GetRun's error is nil.
// Errors are those of [Client.Do].
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	run, _, err := c.getRun(ctx, runID)
	return run, err
}

// getRun is GetRun that also returns the response's metadata.
func (c *Client) getRun(ctx context.Context, runID string) (*Run, *Response, error) {
	if err := checkID("GET /runs/{run_id}", "run", runID); err != nil {
		return nil, nil, err
	}
	run := new(Run)
	resp, err := c.Do(ctx, http.MethodGet, "/runs/"+url.PathEscape(runID), nil, run)
	if err != nil {
		return nil, resp, err
	}
	if run.ID == "" {
		run.ID = runID
	}
	if run.Error != nil {
		run.Error.RunID = cleanText(run.ID, maxRunID)
		run.Error.RequestID = cleanText(resp.RequestID, maxRunID)
	}
	return run, resp, nil
}

// WaitRun polls the run runID with [Client.GetRun] until it has ended
// (see [Run.Done]) and returns it. A completed run comes back with a nil
// error; a failed one with its Run.Error, a [*RunError] matching
// [ErrRunFailed]; a cancelled one with a *RunError matching
// [ErrRunCanceled]. A status WaitRun does not know is not an end: it
// keeps polling.
//
// The first poll is sent at once. After a poll that has not seen the end,
// WaitRun waits for the poll's Retry-After when it sent one (at most
// 60 s); otherwise a random time ("full jitter") of up to 1 s after the
// first poll, up to 2 s after the second, doubling up to 30 s. It never
// waits past ctx's deadline: when the next poll would come at or after
// it, WaitRun returns at once with an error that matches
// context.DeadlineExceeded and names the last status seen. Cancelling
// ctx ends a wait at once.
//
// Every poll goes through the Client's Transport, which retries its
// transient failures; a poll error that remains (an [*APIError], a
// network error, ...) ends the wait and is returned as it is. With any
// error, WaitRun also returns the last Run it read, or nil.
func (c *Client) WaitRun(ctx context.Context, runID string) (*Run, error) {
	var last *Run
	for poll := 1; ; poll++ {
		run, resp, err := c.getRun(ctx, runID)
		if err != nil {
			return last, err
		}
		last = run
		requestID := cleanText(resp.RequestID, maxRunID)
		if run.Done() {
			return run, run.end(requestID)
		}
		delay := c.pollDelay(resp.Header, poll)
		if deadline, ok := ctx.Deadline(); ok && !time.Now().Add(delay).Before(deadline) {
			return run, waitAbandoned(run, requestID,
				"the next poll, in "+delay.String()+", would come after the context deadline", context.DeadlineExceeded)
		}
		if err := sleep(ctx, delay); err != nil {
			return run, waitAbandoned(run, requestID, "", err)
		}
	}
}

// pollDelay is WaitRun's wait after its poll-th poll, whose answer had
// header h.
func (c *Client) pollDelay(h http.Header, poll int) time.Duration {
	if d := parseRetryAfter(h.Get("Retry-After"), time.Now()); d > 0 {
		return min(d, runPollMaxRetryAfter)
	}
	return backoff(runPollBase, runPollMax, poll, c.random())
}

func (c *Client) random() float64 {
	if c.rand != nil {
		return c.rand()
	}
	return rand.Float64()
}

// waitAbandoned is the error of a WaitRun that stopped before the run
// ended: it names the run, its last status and the last poll's request,
// and wraps why (the context's error).
func waitAbandoned(run *Run, requestID, detail string, why error) error {
	msg := "neuracraft: run " + cleanText(run.ID, maxRunID) + ": stopped waiting: last status " +
		strconv.Quote(cleanText(run.Status, maxRunReason))
	if detail != "" {
		msg += "; " + detail
	}
	if requestID != "" {
		msg += " (request " + requestID + ")"
	}
	return fmt.Errorf("%s: %w", msg, why)
}

// CancelRun asks the API to stop the run runID (POST
// /runs/{run_id}/cancel), which answers that cancellation was requested;
// the run reads "cancelled" once it has stopped, and [Client.WaitRun]
// then returns an error matching [ErrRunCanceled]. Errors are those of
// [Client.Do]. Being a POST, the request is retried by the Transport only
// after 429 or 503.
func (c *Client) CancelRun(ctx context.Context, runID string) error {
	if err := checkID("POST /runs/{run_id}/cancel", "run", runID); err != nil {
		return err
	}
	_, err := c.Do(ctx, http.MethodPost, "/runs/"+url.PathEscape(runID)+"/cancel", nil, nil)
	return err
}

// checkID refuses an ID that cannot be one path segment: empty, "." or
// "..".
func checkID(route, kind, id string) error {
	if id == "" || id == "." || id == ".." {
		return fmt.Errorf("neuracraft: %s: invalid %s ID %q", route, kind, id)
	}
	return nil
}
