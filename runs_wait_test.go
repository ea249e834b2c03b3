// Tests of WaitRun (runs.go): every kind of end, poll failures,
// Retry-After, the poll delay and its bounds (under synctest), deadlines
// and cancellation, and the request ID its errors carry.

package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestWaitRunEnds runs each kind of end on the fake server.
func TestWaitRunEnds(t *testing.T) {
	t.Parallel()
	t.Run("completed, default script", func(t *testing.T) {
		run, _, err := waitRunEnd(t, runEnd{wantPolls: 3})
		require.NoError(t, err)
		require.Equal(t, "completed", run.Status)
		require.JSONEq(t, `{"result":"ok","records_processed":42}`, string(run.Output))
		require.Nil(t, run.Error)
	})
	t.Run("completed at once", func(t *testing.T) {
		run, _, err := waitRunEnd(t, runEnd{script: new(neuracrafttest.RunCompleted([]int{1, 2})), wantPolls: 1})
		require.NoError(t, err)
		require.JSONEq(t, `[1,2]`, string(run.Output))
	})
	t.Run("unknown statuses are not an end", func(t *testing.T) {
		run, _, err := waitRunEnd(t, runEnd{wantPolls: 4, script: new(neuracrafttest.RunCompleted(nil).WithPolls("paused", 2).WithPolls("succeeded", 1))})
		require.NoError(t, err)
		require.Equal(t, "completed", run.Status)
	})
	t.Run("failed with plugin code 8102", func(t *testing.T) {
		run, requestID, err := waitRunEnd(t, runEnd{wantPolls: 2, script: new(neuracrafttest.RunFailed(8102, specRunMessage).WithPolls("running", 1).WithPluginID("pdf-export-1").WithStack("at render (pdf.js:1)", "at export (pdf.js:9)"))})
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
	})
	t.Run("failed with plugin code as a numeric string", func(t *testing.T) {
		_, _, err := waitRunEnd(t, runEnd{wantPolls: 1, script: new(neuracrafttest.RunFailed("8102", specRunMessage))})
		require.ErrorIs(t, err, Code(8102))
		require.ErrorIs(t, err, ErrPlugin)
		require.ErrorIs(t, err, ErrRunFailed)
	})
	t.Run("failed with a string code", func(t *testing.T) {
		run, requestID, err := waitRunEnd(t, runEnd{wantPolls: 1, script: new(neuracrafttest.RunFailed("VALIDATION", "Field \"to\" is required").WithPluginID("mail-1"))})
		require.ErrorIs(t, err, ErrRunFailed)
		require.NotErrorIs(t, err, ErrPlugin)
		require.Equal(t, fmt.Sprintf(`neuracraft: run %s: failed: VALIDATION: Field "to" is required (plugin mail-1, request %s)`,
			run.ID, requestID), err.Error())
	})
	t.Run("canceled", func(t *testing.T) {
		run, requestID, err := waitRunEnd(t, runEnd{wantPolls: 2, script: new(neuracrafttest.RunCanceled().WithPolls("running", 1))})
		require.ErrorIs(t, err, ErrRunCanceled)
		require.NotErrorIs(t, err, ErrRunFailed)
		require.False(t, IsRetryable(err))
		require.Nil(t, run.Error, "Run.Error is for failures")
		var runErr *RunError
		require.ErrorAs(t, err, &runErr)
		require.Empty(t, cmp.Diff(&RunError{RunID: run.ID, Canceled: true, RequestID: requestID}, runErr))
		require.Equal(t, fmt.Sprintf("neuracraft: run %s: canceled (request %s)", run.ID, requestID), err.Error())
	})
}

// runEnd is one case of TestWaitRunEnds.
type runEnd struct {
	script    *neuracrafttest.RunScript // nil: the fake's default
	wantPolls int
}

// waitRunEnd starts a run on the fake server with tt.script, waits for it,
// checks the polls and returns the run, the last poll's request ID and the
// error.
func waitRunEnd(t *testing.T, tt runEnd) (*Run, string, error) {
	t.Helper()
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
	return run, polls[len(polls)-1].Header.Get("X-Request-ID"), err
}

// TestWaitRunPollFailures: an error that outlasts the Transport's
// retries ends the wait, returned as it is, with the last run read.
func TestWaitRunPollFailures(t *testing.T) {
	t.Parallel()
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
		c := runClient(srv, 3)
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
	t.Run("context already canceled", func(t *testing.T) {
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
	t.Parallel()
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
			wantText: `neuracraft: run run_1: stopped waiting: last status "run ning[31m"; the next poll, in 30s, would come after the context deadline (request req_1): context deadline exceeded`,
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

func TestWaitRunCanceledDuringWait(t *testing.T) {
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

// FuzzWaitRun answers WaitRun's first poll with an arbitrary status,
// Retry-After and body: no panic, no wait past the deadline, errors on
// one line without the API key, a *RunError only for an ended run.
func FuzzWaitRun(f *testing.F) {
	f.Add(200, "", []byte(`{"id":"run_1","status":"completed","output":{}}`))
	f.Add(200, "5", []byte(`{"id":"run_1","status":"running"}`))
	f.Add(200, "Wed, 21 Oct 2015 07:28:00 GMT", readRunFile(f, "failed_timeout_stack.json"))
	f.Add(200, "", readRunFile(f, "failed_plugin_8102.json"))
	f.Add(200, "", readRunFile(f, "cancelled.json"))
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
			c.HTTPClient.Transport.(*Transport).Retry.MaxAttempts = 1
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			run, err := c.WaitRun(ctx, "run_1")
			require.LessOrEqual(t, time.Since(start), 100*time.Millisecond, "WaitRun returned after %s, past the deadline", time.Since(start))
			if err == nil {
				require.NotNil(t, run, "nil error with run %+v", run)
				require.True(t, run.Done(), "nil error with run %+v", run)
				require.Nil(t, run.Error, "nil error with run %+v", run)
				require.Equal(t, runCompleted, stateOf(run.Status), "nil error with run %+v", run)
				return
			}
			msg := err.Error()
			require.False(t, strings.ContainsAny(msg, "\r\n"), "error text: %q", msg)
			require.False(t, strings.Contains(msg, c.APIKey), "error text: %q", msg)
			var runErr *RunError
			if errors.As(err, &runErr) {
				checkRunErrorClean(t, runErr)
				require.NotNil(t, run, "RunError %v for run %+v", err, run)
				require.True(t, run.Done(), "RunError %v for run %+v", err, run)
				require.False(t, IsRetryable(err), "RunError %v for run %+v", err, run)
			}
		})
	})
}

// TestRunRequestIDIsCleanedAndCapped: the poll's X-Request-ID reaches a
// RunError and a wait's error cleaned and capped like APIError.RequestID
// (128 characters).
func TestRunRequestIDIsCleanedAndCapped(t *testing.T) {
	id := "req_\x1b[2J" + strings.Repeat("x", 1000)
	want := cleanHeaderValue(id) // as APIError.RequestID
	require.Equal(t, "req_[2J", want[:7])
	require.Equal(t, 128, utf8.RuneCountInString(want))

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

// noJitter fails the test if WaitRun draws a jittered backoff.
func noJitter(t *testing.T) func() float64 {
	return func() float64 {
		assert.Fail(t, "WaitRun used the backoff, want the Retry-After")
		return 0
	}
}
