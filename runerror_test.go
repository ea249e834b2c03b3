// Tests of RunError: its one-line text, its slog value, what it matches
// with errors.Is, and the cleaning of server text and request IDs.

package neuracraft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		{"canceled", &RunError{RunID: "run_1", Canceled: true, RequestID: "req_1"},
			"neuracraft: run run_1: canceled (request req_1)"},
		{"zero value", &RunError{}, "neuracraft: run failed"},
		{"zero value, canceled", &RunError{Canceled: true}, "neuracraft: run canceled"},
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
	t.Parallel()
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
		{"canceled", &RunError{Canceled: true}, []string{"ErrRunCanceled"}},
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
