// This file decodes the API's run document into a Run, leniently, and a
// failed run's error into a RunError.

package neuracraft

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

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
