// This file holds pipeline runs: Run, and the Client methods that start,
// read, wait for and cancel a run.

package neuracraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The pacing of [Client.WaitRun] between two polls that carry no
// Retry-After: full jitter, up to runPollBase after the first poll,
// doubling at each poll, capped at runPollMax. A poll's Retry-After is
// honoured up to defaultMaxRetryAfter (60 s).
const (
	runPollBase = time.Second
	runPollMax  = 30 * time.Second
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
func (r *Run) Done() bool { return r != nil && stateOf(r.Status) != runActive }

// runState is what a run's status says of it.
type runState int

const (
	runActive    runState = iota // any status but the three below: the run may still change
	runCompleted                 // "completed"
	runFailed                    // "failed"
	runCanceled                  // "cancelled" or "canceled"
)

// stateOf reads a run's status, in any case and with surrounding space.
// It is the one place a status is compared.
func stateOf(status string) runState {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "completed":
		return runCompleted
	case "failed":
		return runFailed
	case "cancelled", "canceled":
		return runCanceled
	}
	return runActive
}

// end is the error of a run that has ended: nil for a completed run,
// r.Error for a failed one, a *RunError matching ErrRunCanceled for a
// canceled one. requestID names the poll that saw the end.
func (r *Run) end(requestID string) error {
	switch {
	case r.Error != nil:
		return r.Error
	case stateOf(r.Status) == runCanceled:
		return &RunError{RunID: cleanText(r.ID, maxRunID), Canceled: true, RequestID: requestID}
	}
	return nil
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
func (c *Client) StartRun(ctx context.Context, pipelineID string, input any) (_ *Run, err error) {
	defer c.hide(&err) // hide.go
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
		return nil, answerError(http.MethodPost, path, resp, errors.New("the answer names no run"))
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
		run.Error.RequestID = resp.RequestID // cleaned by Do
		_ = hideCredentials(run.Error, c.credentials())
	}
	return run, resp, nil
}

// WaitRun polls the run runID with [Client.GetRun] until it has ended
// (see [Run.Done]) and returns it. A completed run comes back with a nil
// error; a failed one with its Run.Error, a [*RunError] matching
// [ErrRunFailed]; a canceled one with a *RunError matching
// [ErrRunCanceled]. A status WaitRun does not know is not an end: it
// keeps polling.
//
// The first poll is sent at once. After a poll that has not seen the end,
// WaitRun waits for the poll's Retry-After when it sent one (at most
// 60 s); otherwise a random time ("full jitter") of up to 1 s after the
// first poll, up to 2 s after the second, doubling up to 30 s. It never
// waits past ctx's deadline: when the next poll would come at or after
// it, WaitRun returns at once with an error that matches
// context.DeadlineExceeded and names the last status seen. Canceling
// ctx ends a wait at once.
//
// Every poll goes through the Client's Transport, which retries its
// transient failures; a poll error that remains (an [*APIError], a
// network error, ...) ends the wait and is returned as it is. With any
// error, WaitRun also returns the last Run it read, or nil.
func (c *Client) WaitRun(ctx context.Context, runID string) (_ *Run, err error) {
	defer c.hide(&err) // hide.go
	var last *Run
	for poll := 1; ; poll++ {
		run, resp, err := c.getRun(ctx, runID)
		if err != nil {
			return last, err
		}
		last = run
		requestID := resp.RequestID
		if run.Done() {
			return run, run.end(requestID)
		}
		delay := c.pollDelay(resp.Header, poll)
		if deadline, ok := ctx.Deadline(); ok && !time.Now().Add(delay).Before(deadline) {
			return run, waitAbandoned(run, requestID,
				"; the next poll, in "+delay.String()+", would come after the context deadline", context.DeadlineExceeded)
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
		return min(d, defaultMaxRetryAfter)
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
	what := "run " + cleanText(run.ID, maxRunID) + ": stopped waiting"
	detail = "last status " + strconv.Quote(cleanText(run.Status, maxRunReason)) + detail
	return fmt.Errorf("%s: %w", errorLine("", "", what, detail, requestNote(requestID)), why)
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
		method, path, _ := strings.Cut(route, " ")
		return errors.New(errorLine(method, path, "invalid "+kind+" ID "+strconv.Quote(id), ""))
	}
	return nil
}
