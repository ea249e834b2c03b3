// Tests of what Client sends (method, path, headers, body, request IDs)
// and of what it does with a success body it cannot use.

package neuracraft_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// TestClientSends checks, call by call, what the server received: method,
// path, query, headers and body.
func TestClientSends(t *testing.T) {
	type cred int
	const (
		withKey cred = iota
		withToken
		withBoth
	)
	tests := []struct {
		name   string
		cred   cred
		method string
		path   string // {id} is replaced by a pipeline's ID
		in     any
		want   func(srv *neuracrafttest.Server, id string) sentRequest
	}{
		{
			name: "GET with API key", cred: withKey, method: "GET", path: "/pipelines/{id}",
			want: func(srv *neuracrafttest.Server, id string) sentRequest {
				return sentRequest{Method: "GET", Path: "/v1/pipelines/" + id, APIKey: srv.APIKey, Accept: "application/json"}
			},
		},
		{
			name: "GET with query", cred: withKey, method: "GET", path: "/pipelines?limit=1&offset=0",
			want: func(srv *neuracrafttest.Server, _ string) sentRequest {
				return sentRequest{Method: "GET", Path: "/v1/pipelines", APIKey: srv.APIKey, Accept: "application/json",
					Query: url.Values{"limit": {"1"}, "offset": {"0"}}}
			},
		},
		{
			name: "POST with body and API key", cred: withKey, method: "POST", path: "/pipelines",
			in: map[string]any{"name": "nightly-etl", "steps": []any{"extract", map[string]any{"load": true}}, "retries": 3},
			want: func(srv *neuracrafttest.Server, _ string) sentRequest {
				return sentRequest{Method: "POST", Path: "/v1/pipelines", APIKey: srv.APIKey, Accept: "application/json",
					ContentType: "application/json",
					Body:        map[string]any{"name": "nightly-etl", "steps": []any{"extract", map[string]any{"load": true}}, "retries": 3.0}}
			},
		},
		{
			name: "POST with a struct body and token", cred: withToken, method: "POST", path: "/pipelines",
			in: pipelineDoc{Name: "nightly-etl", Schedule: "@daily"},
			want: func(srv *neuracrafttest.Server, _ string) sentRequest {
				return sentRequest{Method: "POST", Path: "/v1/pipelines", Authorization: "Bearer " + srv.Token,
					Accept: "application/json", ContentType: "application/json",
					Body: map[string]any{"id": "", "name": "nightly-etl", "schedule": "@daily", "created_at": ""}}
			},
		},
		{
			name: "POST without body", cred: withKey, method: "POST", path: "/pipelines/{id}/run",
			want: func(srv *neuracrafttest.Server, id string) sentRequest {
				return sentRequest{Method: "POST", Path: "/v1/pipelines/" + id + "/run", APIKey: srv.APIKey, Accept: "application/json"}
			},
		},
		{
			name: "DELETE with token and key: only the token is sent", cred: withBoth, method: "DELETE", path: "/pipelines/{id}",
			want: func(srv *neuracrafttest.Server, id string) sentRequest {
				return sentRequest{Method: "DELETE", Path: "/v1/pipelines/" + id, Authorization: "Bearer " + srv.Token,
					Accept: "application/json"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t)
			p := createPipeline(t, srv, c, "nightly-etl")
			switch tt.cred {
			case withToken:
				t.Setenv(neuracraft.EnvAPIKey, "nc_env_key") // not sent along with a token either
				c = &neuracraft.Client{BaseURL: srv.URL, Token: srv.Token}
			case withBoth:
				c = &neuracraft.Client{BaseURL: srv.URL, Token: srv.Token, APIKey: srv.APIKey}
			}
			resp, err := c.Do(t.Context(), tt.method, strings.ReplaceAll(tt.path, "{id}", p.ID), tt.in, nil)
			require.NoError(t, err)

			reqs := srv.Requests()
			require.Len(t, reqs, 1)
			got := sentOf(t, reqs[0])
			require.Empty(t, cmp.Diff(tt.want(srv, p.ID), got, cmpopts.EquateEmpty()))
			require.True(t, strings.HasPrefix(reqs[0].Header.Get("User-Agent"), "neuracraft-go"),
				"User-Agent %q", reqs[0].Header.Get("User-Agent"))
			id := requireOneRequestID(t, reqs)
			require.Equal(t, id, resp.RequestID)
			if tt.cred != withKey {
				require.Empty(t, reqs[0].Header.Values("X-API-Key"), "no X-API-Key along with a token")
			}
		})
	}
}

// TestClientRequestIDsDiffer checks that two calls get two request IDs.
func TestClientRequestIDsDiffer(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t)
	r1, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	require.NoError(t, err)
	r2, err := c.Do(t.Context(), "GET", "/pipelines", nil, nil)
	require.NoError(t, err)
	require.NotEqual(t, r1.RequestID, r2.RequestID)
	require.Len(t, srv.Requests(), 2)
}

// TestClientEncodingErrorSendsNothing checks that a request body that is
// not JSON-encodable fails before anything is sent.
func TestClientEncodingErrorSendsNothing(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t)
	_, err := c.Do(t.Context(), "POST", "/pipelines", map[string]any{"name": make(chan int)}, nil)
	require.Error(t, err)
	var unsupported *json.UnsupportedTypeError
	require.True(t, errors.As(err, &unsupported), "%v", err)
	require.Contains(t, err.Error(), "POST /v1/pipelines")
	require.Empty(t, srv.Requests())
}

// TestClientBadSuccessBodies checks success bodies that are not the JSON
// promised, and bodies that are empty.
func TestClientBadSuccessBodies(t *testing.T) {
	t.Parallel()
	ts, ids := oddServer(t)
	c := &neuracraft.Client{BaseURL: ts.URL + "/v1", APIKey: secretKey}

	t.Run("not JSON", func(t *testing.T) {
		var out pipelineDoc
		resp, err := c.Do(t.Context(), "GET", "/html", nil, &out)
		require.Error(t, err)
		var apiErr *neuracraft.APIError
		require.False(t, errors.As(err, &apiErr), "a 200 is not an *APIError: %v", err)
		var syntaxErr *json.SyntaxError
		require.True(t, errors.As(err, &syntaxErr), "%v", err)
		sent := ids()
		id := sent[len(sent)-1]
		require.Regexp(t, requestIDPattern, id)
		require.Contains(t, err.Error(), "(request "+id+")")
		require.True(t, strings.HasPrefix(err.Error(), "neuracraft: GET /v1/html: 200 OK"), err.Error())
		require.Nil(t, resp, "no metadata beside an error")
		require.Equal(t, pipelineDoc{}, out)
	})

	t.Run("wrong JSON type", func(t *testing.T) {
		var out pipelineDoc
		_, err := c.Do(t.Context(), "GET", "/wrong-type", nil, &out)
		var typeErr *json.UnmarshalTypeError
		require.True(t, errors.As(err, &typeErr), "%v", err)
	})

	t.Run("not JSON, out nil", func(t *testing.T) {
		resp, err := c.Do(t.Context(), "GET", "/html", nil, nil)
		require.NoError(t, err, "the body is discarded")
		require.Equal(t, 200, resp.StatusCode)
	})

	for _, path := range []string{"/blank", "/no-content", "/empty-json"} {
		t.Run("empty body "+path, func(t *testing.T) {
			out := pipelineDoc{Name: "untouched"}
			resp, err := c.Do(t.Context(), "GET", path, nil, &out)
			require.NoError(t, err)
			require.Equal(t, pipelineDoc{Name: "untouched"}, out)
			require.NotEmpty(t, resp.RequestID)
		})
	}
}

// TestClientMaxResponseBody checks that a success body larger than
// MaxResponseBody is an error, never silently cut, and that one of exactly
// MaxResponseBody bytes is decoded.
func TestClientMaxResponseBody(t *testing.T) {
	srv, c := newServer(t)
	p := createPipeline(t, srv, c, "nightly-etl")
	resp, err := c.Do(t.Context(), "GET", "/pipelines/"+p.ID, nil, nil)
	require.NoError(t, err)
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	require.NoError(t, err)

	for _, tt := range []struct {
		limit   int64
		wantErr bool
	}{
		{limit: size, wantErr: false},
		{limit: size - 1, wantErr: true},
		{limit: 1, wantErr: true},
		{limit: 0, wantErr: false},                 // defaultMaxResponseBody
		{limit: math.MaxInt64, wantErr: false},     // as good as no limit
		{limit: math.MaxInt64 - 1, wantErr: false}, // likewise
	} {
		t.Run(strconv.FormatInt(tt.limit, 10), func(t *testing.T) {
			c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, MaxResponseBody: tt.limit}
			var out pipelineDoc
			resp, err := c.Do(t.Context(), "GET", "/pipelines/"+p.ID, nil, &out)
			if !tt.wantErr {
				require.NoError(t, err)
				require.Empty(t, cmp.Diff(p, out), "the body is decoded in full")
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), fmt.Sprintf("larger than %d bytes", tt.limit))
			require.Nil(t, resp, "no metadata beside an error")
			require.Contains(t, err.Error(), "(request ")
			require.Equal(t, pipelineDoc{}, out, "a cut body is not decoded")
			var apiErr *neuracraft.APIError
			require.False(t, errors.As(err, &apiErr))
		})
	}

	t.Run("slow body over the limit", func(t *testing.T) {
		c := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey, MaxResponseBody: 100}
		srv.Fail("GET /pipelines/{id}", 1, neuracrafttest.SlowBody(200, 300, 50, time.Millisecond))
		var out pipelineDoc
		_, err := c.Do(t.Context(), "GET", "/pipelines/"+p.ID, nil, &out)
		require.ErrorContains(t, err, "larger than 100 bytes")
		require.Equal(t, pipelineDoc{}, out)
	})
}

// sentRequest is what the server received in one request, for comparison.
type sentRequest struct {
	Method, Path  string
	Query         url.Values
	APIKey        string
	Authorization string
	ContentType   string
	Accept        string
	Body          any
}

// sentOf returns the parts of r that tests compare.
func sentOf(t *testing.T, r neuracrafttest.Request) sentRequest {
	t.Helper()
	s := sentRequest{
		Method: r.Method, Path: r.Path, Query: r.Query,
		APIKey:        r.Header.Get("X-API-Key"),
		Authorization: r.Header.Get("Authorization"),
		ContentType:   r.Header.Get("Content-Type"),
		Accept:        r.Header.Get("Accept"),
	}
	if len(r.Body) > 0 {
		require.NoError(t, json.Unmarshal(r.Body, &s.Body), "body %q", r.Body)
	}
	return s
}

// oddServer serves success bodies that are not what the API
// promises, and records the X-Request-ID of each request. It sends no
// X-Request-ID back.
func oddServer(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("X-Request-ID"))
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>Welcome to nginx!</body></html>")
		case "/v1/blank":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, " \r\n\t ")
		case "/v1/no-content":
			w.WriteHeader(http.StatusNoContent)
		case "/v1/empty-json":
			w.Header().Set("Content-Type", "application/json")
		case "/v1/wrong-type":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id": 42}`)
		}
	}))
	t.Cleanup(ts.Close)
	return ts, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), ids...)
	}
}
