// This file holds the routes: the route table, the in-memory resources and
// the handler of each endpoint.

package neuracrafttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Body limits.
const (
	maxJSONBody   = 1 << 20   // JSON routes
	maxUploadBody = 256 << 20 // POST /plugins/custom
)

// Pagination of GET /pipelines.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// A routeDef is one served route.
type routeDef struct {
	name   string // "METHOD /path", relative to /v1
	scope  string
	handle func(s *Server, w http.ResponseWriter, r *http.Request)
}

var routeDefs = []routeDef{
	{"POST /pipelines", scopePipelineWrite, (*Server).createPipeline},
	{"GET /pipelines", scopePipelineRead, (*Server).listPipelines},
	{"GET /pipelines/{id}", scopePipelineRead, (*Server).getPipeline},
	{"DELETE /pipelines/{id}", scopePipelineWrite, (*Server).deletePipeline},
	{"GET /plugins", scopePipelineRead, (*Server).listPlugins},
	{"POST /plugins/custom", scopePluginManage, (*Server).installPlugin},
	{"POST /pipelines/{id}/run", scopeWorkflowExecute, (*Server).startRun},
	{"GET /runs/{run_id}", scopePipelineRead, (*Server).getRun},
	{"POST /runs/{run_id}/cancel", scopeWorkflowExecute, (*Server).cancelRun},
}

// routeScopes maps a route name to the scope it needs.
var routeScopes = func() map[string]string {
	m := make(map[string]string, len(routeDefs))
	for _, d := range routeDefs {
		m[d.name] = d.scope
	}
	return m
}()

// newMux returns a ServeMux serving the routes under /v1, and the map from
// its patterns to route names. Every known path also gets a method-less
// pattern that answers 405, and "/" answers 404, so that no answer is
// ServeMux's plain-text default.
func (s *Server) newMux() (*http.ServeMux, map[string]string) {
	mux := http.NewServeMux()
	patterns := make(map[string]string, len(routeDefs))
	allowed := make(map[string][]string) // path -> methods, in table order
	var paths []string
	for _, d := range routeDefs {
		method, path, _ := strings.Cut(d.name, " ")
		pattern := method + " /v1" + path
		handle := d.handle
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { handle(s, w, r) })
		patterns[pattern] = d.name
		if _, ok := allowed[path]; !ok {
			paths = append(paths, path)
		}
		allowed[path] = append(allowed[path], method)
		if method == http.MethodGet {
			allowed[path] = append(allowed[path], http.MethodHead)
		}
	}
	for _, path := range paths {
		allow := strings.Join(allowed[path], ", ")
		mux.HandleFunc("/v1"+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method "+r.Method+" is not allowed on this resource")
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "Resource not found")
	})
	return mux, patterns
}

// A pipeline is a stored pipeline. Fields holds the members of the object
// that created it, so that it reads back what was sent.
type pipeline struct {
	id        string
	createdAt string
	fields    map[string]json.RawMessage
}

// MarshalJSON encodes the pipeline as its creation object plus "id" and
// "created_at".
func (p *pipeline) MarshalJSON() ([]byte, error) {
	m := make(map[string]json.RawMessage, len(p.fields)+2)
	for k, v := range p.fields {
		m[k] = v
	}
	m["id"], _ = json.Marshal(p.id)
	m["created_at"], _ = json.Marshal(p.createdAt)
	return json.Marshal(m)
}

// A plugin is a built-in or installed plugin as GET /plugins lists it.
type plugin struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	Builtin   bool       `json:"builtin"`
	CodeRange *codeRange `json:"code_range,omitempty"`
	Size      int64      `json:"size,omitempty"`
}

// A codeRange is the range of error codes (8AAA) a plugin answers with.
type codeRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// builtinPlugins are listed by GET /plugins before any installed plugin.
var builtinPlugins = []plugin{
	{ID: "pdf-export", Name: "PDF Export", Version: "2.3.1", Builtin: true, CodeRange: &codeRange{8100, 8199}},
	{ID: "csv-import", Name: "CSV Import", Version: "1.8.0", Builtin: true, CodeRange: &codeRange{8200, 8299}},
	{ID: "slack-notify", Name: "Slack Notifications", Version: "0.9.4", Builtin: true, CodeRange: &codeRange{8300, 8399}},
}

// createPipeline serves POST /pipelines. The body must be a JSON object with
// a non-empty string "name".
func (s *Server) createPipeline(w http.ResponseWriter, r *http.Request) {
	fields, ok := readJSONObject(w, r, false)
	if !ok {
		return
	}
	var name string
	if err := json.Unmarshal(fields["name"], &name); err != nil || name == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", `Field "name" must be a non-empty string`)
		return
	}
	delete(fields, "id")
	delete(fields, "created_at")
	p := &pipeline{
		id:        "pipe_" + randomHex(6),
		createdAt: time.Now().UTC().Format(time.RFC3339),
		fields:    fields,
	}
	s.mu.Lock()
	s.pipelines[p.id] = p
	s.order = append(s.order, p.id)
	s.mu.Unlock()
	w.Header().Set("Location", s.URL+"/pipelines/"+p.id)
	writeJSON(w, http.StatusCreated, p)
}

// listPipelines serves GET /pipelines?limit=&offset=.
func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit", defaultLimit, 1)
	if !ok {
		return
	}
	offset, ok := queryInt(w, r, "offset", 0, 0)
	if !ok {
		return
	}
	limit = min(limit, maxLimit)
	s.mu.Lock()
	total := len(s.order)
	items := make([]*pipeline, 0, limit)
	for i := offset; i < total && len(items) < limit; i++ {
		items = append(items, s.pipelines[s.order[i]])
	}
	body, _ := json.Marshal(map[string]any{"items": items, "total": total})
	s.mu.Unlock()
	writeRawJSON(w, http.StatusOK, body)
}

// getPipeline serves GET /pipelines/{id}.
func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, ok := s.pipelines[r.PathValue("id")]
	var body []byte
	if ok {
		body, _ = json.Marshal(p)
	}
	s.mu.Unlock()
	if !ok {
		writeNotFound(w)
		return
	}
	writeRawJSON(w, http.StatusOK, body)
}

// deletePipeline serves DELETE /pipelines/{id}. Runs of the pipeline stay
// readable.
func (s *Server) deletePipeline(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, ok := s.pipelines[id]
	if ok {
		delete(s.pipelines, id)
		for i, v := range s.order {
			if v == id {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		writeNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
}

// listPlugins serves GET /plugins: the built-in plugins, then the installed
// ones.
func (s *Server) listPlugins(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	list := append(append([]plugin(nil), builtinPlugins...), s.installed...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"plugins": list})
}

// installPlugin serves POST /plugins/custom, a multipart/form-data upload
// with a "file" part. The file is counted, not kept.
func (s *Server) installPlugin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "Body must be multipart/form-data with a \"file\" part")
		return
	}
	var (
		found bool
		name  string
		size  int64
	)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err == nil && part.FormName() == "file" && !found {
			found, name = true, part.FileName()
			size, err = io.Copy(io.Discard, part)
		} else if err == nil {
			_, err = io.Copy(io.Discard, part)
		}
		if err != nil {
			writeBodyError(w, err, "Malformed multipart body")
			return
		}
	}
	if !found {
		writeError(w, http.StatusBadRequest, "invalid_request", `Missing "file" part`)
		return
	}
	if name == "" {
		name = "plugin.zip"
	}
	p := plugin{ID: "plg_" + randomHex(6), Name: name, Version: "custom", Size: size}
	s.mu.Lock()
	s.installed = append(s.installed, p)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"id": p.ID, "status": "installed"})
}

// readJSONObject reads the request body, at most maxJSONBody bytes, as one
// JSON object. An empty body is accepted, as a nil map, when optional is
// true. On failure it answers the request and returns false.
func readJSONObject(w http.ResponseWriter, r *http.Request, optional bool) (map[string]json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		writeBodyError(w, err, "Could not read request body")
		return nil, false
	}
	if optional && len(bytes.TrimSpace(data)) == 0 {
		return nil, true
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "Request body must be a JSON object")
		return nil, false
	}
	return m, true
}

// queryInt parses the query parameter key as an integer of at least lo,
// returning def when it is absent. On failure it answers the request and
// returns false.
func queryInt(w http.ResponseWriter, r *http.Request, key string, def, lo int) (int, bool) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo {
		writeError(w, http.StatusBadRequest, "invalid_request", "Query parameter "+key+" must be an integer of at least "+strconv.Itoa(lo))
		return 0, false
	}
	return n, true
}

// writeBodyError answers a failure to read the request body: 413 when it
// was over its limit, else 400 with message.
func writeBodyError(w http.ResponseWriter, err error, message string) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request body is too large")
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_request", message)
}

func writeNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "not_found", "Resource not found")
}
