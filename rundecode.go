// This file decodes the API's run document into a Run, leniently, and a
// failed run's error into a RunError.

package neuracraft

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// runDocument is the API's run document, read in one pass into lenient
// leaf types (lenient.go).
type runDocument struct {
	ID          jsonText  `json:"id"`
	RunID       jsonText  `json:"run_id"`
	PipelineID  jsonText  `json:"pipeline_id"`
	Status      jsonText  `json:"status"`
	Output      jsonValue `json:"output"`
	Error       jsonValue `json:"error"` // a string or an object: see decodeRunError
	MonitorURL  jsonText  `json:"monitor_url"`
	StartedAt   jsonText  `json:"started_at"`
	CompletedAt jsonText  `json:"completed_at"`
}

// runErrorDocument is the "error" object of a failed run, as the manual's
// execution log gives it.
type runErrorDocument struct {
	Code          jsonCode  `json:"code"`
	Message       jsonText  `json:"message"`
	PluginID      jsonText  `json:"plugin_id"`
	PluginIDCamel jsonText  `json:"pluginId"`
	Stack         jsonValue `json:"stack"`
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
		ID:          cmp.Or(string(doc.ID), string(doc.RunID)),
		PipelineID:  string(doc.PipelineID),
		Status:      string(doc.Status),
		MonitorURL:  string(doc.MonitorURL),
		StartedAt:   parseTime(doc.StartedAt),
		CompletedAt: parseTime(doc.CompletedAt),
	}
	if len(doc.Output) > 0 {
		r.Output = json.RawMessage(doc.Output)
	}
	if stateOf(r.Status) == runFailed {
		r.Error = decodeRunError(doc.Error)
		r.Error.RunID = cleanText(r.ID, maxRunID)
	}
	return nil
}

// decodeRunError decodes a failed run's "error", whatever its shape.
func decodeRunError(raw jsonValue) *RunError {
	e := &RunError{}
	if len(raw) == 0 {
		return e
	}
	switch raw[0] {
	case '"':
		e.Message = cleanText(textOf(raw), maxMessage)
	case '{':
		var doc runErrorDocument
		if json.Unmarshal(raw, &doc) != nil {
			return e
		}
		e.Code, e.Reason = runErrorCode(doc.Code)
		e.Message = cleanText(string(doc.Message), maxMessage)
		e.PluginID = cleanText(cmp.Or(string(doc.PluginID), string(doc.PluginIDCamel)), maxRunID)
		e.Stack = decodeStack(doc.Stack)
	}
	return e
}

// runErrorCode reads a run error's code: a plugin code (a number or a
// numeric string in 8000-8999), else the code as sent, cleaned, as the
// reason ("TIMEOUT", or a number that is not a plugin code).
func runErrorCode(c jsonCode) (Code, string) {
	switch {
	case c.isNumber && Code(c.number).IsPlugin():
		return Code(c.number), ""
	case c.isNumber:
		return 0, strconv.Itoa(c.number)
	}
	return 0, cleanText(cmp.Or(c.reason, c.other), maxRunReason)
}

// decodeStack reads a stack, an array of strings or one string of lines,
// cleaning each entry and keeping at most maxStackFrames of them (an entry
// that cleans to nothing, such as the empty line after a trailing
// newline, or one that is not a string, is no frame); when it cuts, the
// last entry says how many frames were left out. It walks the stack in
// place: what it allocates is the frames it keeps (and, for one string,
// the string), however many entries the server sent.
func decodeStack(raw jsonValue) []string {
	var st stackFrames
	switch {
	case len(raw) == 0:
		return nil
	case raw[0] == '"':
		for l := range strings.SplitSeq(textOf(raw), "\n") {
			st.add(l)
		}
	case raw[0] == '[':
		eachElement(raw, func(item []byte) {
			if len(item) < 2 || item[0] != '"' {
				return // not a string: no frame
			}
			if inner := item[1 : len(item)-1]; st.full() && bytes.IndexByte(inner, '\\') < 0 {
				countFrame(&st, inner) // without escapes, the bytes are the text: nothing to copy
				return
			}
			st.add(textOf(item))
		})
	default:
		return nil
	}
	return st.frames()
}

// stackFrames gathers a stack's frames for decodeStack: the first
// maxStackFrames cleaned, and a count of the ones after them.
type stackFrames struct {
	kept []string
	more int // frames past maxStackFrames
}

// full reports whether maxStackFrames frames are kept: the next ones are
// only counted.
func (s *stackFrames) full() bool { return len(s.kept) == maxStackFrames }

// add keeps line, cleaned, as the next frame, or counts it once the
// stack is full; a line that cleans to nothing is no frame.
func (s *stackFrames) add(line string) {
	if s.full() {
		countFrame(s, line)
		return
	}
	if line = cleanText(line, maxMessage); line != "" {
		s.kept = append(s.kept, line)
	}
}

// countFrame counts line as a frame past the kept ones, unless it is blank.
func countFrame[T string | []byte](s *stackFrames, line T) {
	if !isBlank(line) {
		s.more++
	}
}

// frames returns the frames kept, the last of them replaced by a count of
// the frames left out (itself included) when there were more.
func (s *stackFrames) frames() []string {
	if len(s.kept) == 0 {
		return nil
	}
	if s.more > 0 {
		s.kept[maxStackFrames-1] = "… " + strconv.Itoa(s.more+1) + " more"
	}
	return s.kept
}

// isBlank reports whether line cleans to nothing (cleanText), without
// building the cleaned text.
func isBlank[T string | []byte](line T) bool {
	for _, r := range string(line) {
		if !unicode.IsSpace(r) && !dropped(r) {
			return false
		}
	}
	return true
}

// textOf returns raw, a JSON string, as a Go string ("" when it is not one).
func textOf(raw []byte) string {
	var t jsonText
	_ = t.UnmarshalJSON(raw)
	return string(t)
}

// parseTime returns t as an RFC 3339 time, or the zero time.
func parseTime(t jsonText) time.Time {
	parsed, err := time.Parse(time.RFC3339, string(t))
	if err != nil {
		return time.Time{}
	}
	return parsed
}
