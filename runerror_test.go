// Tests of RunError (runerror.go): its one-line text, its slog value, and
// what it matches with errors.Is. rundecode_test.go has the cleaning of
// the server's text, runs_wait_test.go that of the request ID.

package neuracraft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

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
