package neuracrafttest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestCreatePipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	r := e.do("POST", "/pipelines", strings.NewReader(`{"name":"nightly","schedule":"@daily","id":"forged"}`))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	got := decode(t, r.body)
	id, _ := got["id"].(string)
	require.Regexp(t, `^pipe_[0-9a-f]{12}$`, id)
	require.Equal(t, e.srv.URL+"/pipelines/"+id, r.header.Get("Location"))
	created, err := time.Parse(time.RFC3339, got["created_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), created, time.Minute)
	require.Empty(t, cmp.Diff(map[string]any{
		"id": id, "name": "nightly", "schedule": "@daily", "created_at": got["created_at"],
	}, got))

	// The Location reads back the same pipeline.
	req, err := http.NewRequest("GET", r.header.Get("Location"), nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", e.srv.APIKey)
	back := e.send(req)
	require.Equal(t, http.StatusOK, back.status)
	require.Empty(t, cmp.Diff(got, decode(t, back.body)))

	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"empty body", "", 400, "invalid_request"},
		{"not JSON", "name=x", 400, "invalid_request"},
		{"array", `[{"name":"x"}]`, 400, "invalid_request"},
		{"null", `null`, 400, "invalid_request"},
		{"trailing data", `{"name":"x"} {}`, 400, "invalid_request"},
		{"no name", `{"schedule":"@daily"}`, 400, "invalid_request"},
		{"empty name", `{"name":""}`, 400, "invalid_request"},
		{"number name", `{"name":7}`, 400, "invalid_request"},
		{"too large", `{"name":"x","pad":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireError(t, e.do("POST", "/pipelines", strings.NewReader(tt.body)), tt.status, tt.code)
		})
	}
	require.Equal(t, float64(1), decode(t, e.do("GET", "/pipelines", nil).body)["total"])
}

func TestGetAndDeletePipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.createPipeline("a")

	r := e.do("GET", "/pipelines/"+id, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "a", decode(t, r.body)["name"])

	notFound := envelopeOf("not_found", "Resource not found")
	r = e.do("GET", "/pipelines/pipe_unknown", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Empty(t, cmp.Diff(notFound, decode(t, r.body)))

	r = e.do("DELETE", "/pipelines/"+id, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Empty(t, cmp.Diff(map[string]any{"status": "deleted"}, decode(t, r.body)))

	for _, method := range []string{"GET", "DELETE"} {
		r = e.do(method, "/pipelines/"+id, nil)
		require.Equal(t, http.StatusNotFound, r.status)
		require.Empty(t, cmp.Diff(notFound, decode(t, r.body)))
	}
}

func TestListPipelines(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := range 105 {
		ids = append(ids, e.createPipeline(fmt.Sprintf("p%03d", i)))
	}

	tests := []struct {
		query string
		want  []string
	}{
		{"", ids[:20]},
		{"?limit=5", ids[:5]},
		{"?limit=5&offset=3", ids[3:8]},
		{"?limit=500", ids[:100]},
		{"?limit=100&offset=100", ids[100:]},
		{"?offset=105", []string{}},
		{"?offset=1000", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.do("GET", "/pipelines"+tt.query, nil)
			require.Equal(t, http.StatusOK, r.status)
			got := decode(t, r.body)
			require.Equal(t, float64(105), got["total"])
			items, ok := got["items"].([]any)
			require.True(t, ok, "items is not an array: %s", r.body)
			gotIDs := []string{}
			for _, it := range items {
				gotIDs = append(gotIDs, it.(map[string]any)["id"].(string))
			}
			require.Empty(t, cmp.Diff(tt.want, gotIDs))
		})
	}

	for _, q := range []string{"limit=abc", "limit=0", "limit=-1", "limit=1.5", "offset=-1", "offset=x"} {
		t.Run(q, func(t *testing.T) {
			requireError(t, e.do("GET", "/pipelines?"+q, nil), 400, "invalid_request")
		})
	}
}

func TestPlugins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	r := e.do("GET", "/plugins", nil)
	require.Equal(t, http.StatusOK, r.status)
	plugins := decode(t, r.body)["plugins"].([]any)
	require.Len(t, plugins, len(builtinPlugins))
	require.Empty(t, cmp.Diff(map[string]any{
		"id": "pdf-export", "name": "PDF Export", "version": "2.3.1", "builtin": true,
		"code_range": map[string]any{"from": float64(8100), "to": float64(8199)},
	}, plugins[0]))

	body, ctype := multipartBody(t, [3]string{"note", "", "hello"}, [3]string{"file", "my-plugin.zip", "PK\x03\x04 zip bytes"})
	r = e.do("POST", "/plugins/custom", body, "Content-Type", ctype)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	got := decode(t, r.body)
	require.Regexp(t, `^plg_[0-9a-f]{12}$`, got["id"])
	require.Equal(t, "installed", got["status"])

	plugins = decode(t, e.do("GET", "/plugins", nil).body)["plugins"].([]any)
	require.Len(t, plugins, len(builtinPlugins)+1)
	last := plugins[len(plugins)-1].(map[string]any)
	require.Equal(t, got["id"], last["id"])
	require.Equal(t, "my-plugin.zip", last["name"])
	require.Equal(t, false, last["builtin"])

	noFile, noFileType := multipartBody(t, [3]string{"note", "", "hello"})
	tests := []struct {
		name  string
		body  io.Reader
		ctype string
	}{
		{"no file part", noFile, noFileType},
		{"not multipart", strings.NewReader(`{"file":"x"}`), "application/json"},
		{"no content type", strings.NewReader("x"), ""},
		{"broken multipart", strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated"), "multipart/form-data; boundary=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireError(t, e.do("POST", "/plugins/custom", tt.body, "Content-Type", tt.ctype), 400, "invalid_request")
		})
	}
}
