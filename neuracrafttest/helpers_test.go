// This file holds the helpers shared by the tests of package
// neuracrafttest: a server with a client for each test, request shortcuts,
// and the decoding of the fake's answers.

package neuracrafttest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// testEnv is a running Server and a plain client for it.
type testEnv struct {
	t   *testing.T
	srv *Server
	hc  *http.Client
}

// newEnv starts a Server that is closed when the test ends.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	srv := NewServer()
	t.Cleanup(srv.Close)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &testEnv{t: t, srv: srv, hc: &http.Client{Transport: tr}}
}

// response is a fully read response.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends method to srv.URL+path with body and the header pairs hdr. When
// hdr holds neither X-API-Key nor Authorization, it sends srv.APIKey.
func (e *testEnv) do(method, path string, body io.Reader, hdr ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	require.NoError(e.t, err)
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if req.Header.Get("X-API-Key") == "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("X-API-Key", e.srv.APIKey)
	}
	return e.send(req)
}

// send sends req as it is and reads the whole response.
func (e *testEnv) send(req *http.Request) response {
	e.t.Helper()
	resp, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode decodes a JSON body into a generic value.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v), "body: %s", b)
	return v
}

// envelopeOf builds the decoded form of an error envelope.
func envelopeOf(code any, message string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": message}}
}

// requireError checks that r is status with the envelope (code, message);
// an empty message is not checked.
func requireError(t *testing.T, r response, status int, code any) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	got := decode(t, r.body)
	e, ok := got["error"].(map[string]any)
	require.True(t, ok, "body: %s", r.body)
	require.Equal(t, code, e["code"])
	require.NotEmpty(t, e["message"])
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

// closeReturns closes srv and fails the test if Close does not return
// promptly.
func closeReturns(t *testing.T, srv *Server) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		require.Fail(t, "Close did not return")
	}
}

// createPipeline creates a pipeline named name and returns its ID.
func (e *testEnv) createPipeline(name string) string {
	e.t.Helper()
	r := e.do("POST", "/pipelines", strings.NewReader(`{"name":"`+name+`"}`))
	require.Equal(e.t, http.StatusCreated, r.status, "body: %s", r.body)
	return decode(e.t, r.body)["id"].(string)
}

// multipartBody returns a multipart/form-data body with the given parts
// (field name, file name, content) and its content type.
func multipartBody(t *testing.T, parts ...[3]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var (
			w   io.Writer
			err error
		)
		if p[1] != "" {
			w, err = mw.CreateFormFile(p[0], p[1])
		} else {
			w, err = mw.CreateFormField(p[0])
		}
		require.NoError(t, err)
		_, err = io.WriteString(w, p[2])
		require.NoError(t, err)
	}
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}

// runEnv is a server with a pipeline, and helpers to start, read and
// cancel its runs.
type runEnv struct {
	*testEnv
	pid string
}

// newRunEnv starts a testEnv with one pipeline.
func newRunEnv(t *testing.T) *runEnv {
	e := newEnv(t)
	return &runEnv{testEnv: e, pid: e.createPipeline("a")}
}

// start starts a run of pipeline pid and returns its ID.
func (e *runEnv) start(pid string) string {
	e.t.Helper()
	r := e.do("POST", "/pipelines/"+pid+"/run", strings.NewReader(`{"input":{"x":1}}`))
	require.Equal(e.t, http.StatusAccepted, r.status, "body: %s", r.body)
	got := decode(e.t, r.body)
	rid, _ := got["run_id"].(string)
	require.Regexp(e.t, `^run_[0-9a-f]{12}$`, rid)
	require.Empty(e.t, cmp.Diff(map[string]any{
		"run_id": rid, "status": "queued", "monitor_url": e.srv.URL + "/runs/" + rid,
	}, got))
	return rid
}

// poll reads run rid once and returns the document and its Retry-After.
func (e *runEnv) poll(rid string) (map[string]any, string) {
	e.t.Helper()
	r := e.do("GET", "/runs/"+rid, nil)
	require.Equal(e.t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(e.t, "application/json", r.header.Get("Content-Type"))
	return decode(e.t, r.body), r.header.Get("Retry-After")
}

// statuses polls rid n times and returns the statuses read.
func (e *runEnv) statuses(rid string, n int) []string {
	e.t.Helper()
	var got []string
	for range n {
		doc, _ := e.poll(rid)
		got = append(got, doc["status"].(string))
	}
	return got
}

func (e *runEnv) cancel(rid string) {
	e.t.Helper()
	r := e.do("POST", "/runs/"+rid+"/cancel", nil)
	require.Equal(e.t, http.StatusOK, r.status, "body: %s", r.body)
	require.Empty(e.t, cmp.Diff(map[string]any{"status": "cancellation_requested"}, decode(e.t, r.body)))
}

// postToken sends a token request with form values and, when id is not
// empty, HTTP Basic client authentication.
func postToken(t *testing.T, srv *Server, form url.Values, basicID, basicSecret string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", srv.TokenURL, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc), string(body))
	return resp.StatusCode, resp.Header, doc
}

// getWithToken sends method to path with the bearer token and returns the
// status and header of the answer.
func getWithToken(t *testing.T, srv *Server, method, path, token string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"name":"p"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header
}
