// This file holds RunError, the error of a run that failed or was
// canceled, and its sentinels.

package neuracraft

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// The sentinel errors of a run that ended without completing. A
// [*RunError] matches exactly one of them.
var (
	ErrRunFailed   = errors.New("neuracraft: run failed")   // the run ended "failed"
	ErrRunCanceled = errors.New("neuracraft: run canceled") // the run ended "cancelled" (or "canceled")
)

// Caps on the server's text kept in a RunError (Message uses maxMessage,
// like APIError.Message).
const (
	maxRunID       = 128 // characters of RunID and PluginID
	maxRunReason   = 64  // characters of Reason and of a status in an error
	maxStackFrames = 50  // entries of Stack
)

// RunError is a run that ended without completing: it failed, or it was
// canceled. [Client.WaitRun] returns it as its error, and [Run.Error]
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
// characters, like APIError.Message; Reason at 64; RunID and PluginID at
// 128; Stack at 50 entries of 300 characters; RequestID like
// APIError.RequestID. Error prints no Stack.
type RunError struct {
	// RunID is the run's ID.
	RunID string
	// Canceled reports a run that was canceled rather than failed: the
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
	// Stack is the failed step's stack, when the API sends one (an array
	// of strings, or one string of lines; blank lines are dropped): at
	// most 50 entries, the last of which, when the stack was longer,
	// says how many were left out.
	Stack []string
	// RequestID is the X-Request-ID of the poll that saw the run end,
	// cleaned like APIError.RequestID.
	RequestID string
}

// Error returns one line: the run, how it ended, its code, reason and
// message, then the plugin and the request, as in (with 8102 registered
// as "PDF Export Failed"; unregistered, it prints as "8102 Plugin Error")
//
//	neuracraft: run run_def456: failed: 8102 PDF Export Failed: invalid template (plugin pdf-export-1, request req_abc123)
func (e *RunError) Error() string {
	if e == nil {
		return nilText
	}
	what := "run failed"
	if e.Canceled {
		what = "run canceled"
	}
	if e.RunID != "" {
		what = "run " + e.RunID + ": " + what[len("run "):]
	}
	var detail []string
	if e.Code != 0 {
		detail = append(detail, e.Code.String())
	}
	if e.Reason != "" {
		detail = append(detail, e.Reason)
	}
	if e.Message != "" {
		detail = append(detail, e.Message)
	}
	var plugin string
	if e.PluginID != "" {
		plugin = "plugin " + e.PluginID
	}
	return errorLine("", "", what, strings.Join(detail, ": "), plugin, requestNote(e.RequestID))
}

// Format prints Error() for every verb (%v, %+v, %#v, %s, and %q quoted),
// so that formatting a RunError never dumps its Stack.
func (e *RunError) Format(f fmt.State, verb rune) { formatText(f, verb, e.Error()) }

// LogValue implements [slog.LogValuer]: the error as a group of its run
// ID, outcome, code, reason, message, plugin and request ID. Stack is
// left out.
func (e *RunError) LogValue() slog.Value {
	if e == nil {
		return slog.GroupValue()
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, textAttr("run_id", e.RunID, maxRunID))
	if e.Canceled {
		attrs = append(attrs, slog.Bool("canceled", true))
	}
	if e.Code != 0 {
		attrs = append(attrs, slog.Int("code", int(e.Code)))
	}
	attrs = appendText(attrs, "reason", e.Reason, maxRunReason)
	attrs = appendText(attrs, "message", e.Message, maxMessage)
	attrs = appendText(attrs, "plugin_id", e.PluginID, maxRunID)
	attrs = appendText(attrs, "request_id", e.RequestID, maxHeaderValue)
	return slog.GroupValue(attrs...)
}

// Is reports whether target is ErrRunFailed (for a failed run),
// ErrRunCanceled (for a canceled one), e's plugin code, or a sentinel
// that classifies the plugin code (ErrPlugin). A code that is not a
// plugin code matches nothing.
func (e *RunError) Is(target error) bool {
	if e == nil {
		return false
	}
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
