// The cost of FromResponse: its benchmarks, a typical error envelope
// beside a plain read-and-unmarshal of the same response (the floor any
// decoder pays) and a 1 MiB body of which only defaultMaxErrorBody is
// kept, and the test that bounds its allocations against that floor.

package neuracraft_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/neuracraft/neuracraft-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// typicalEnvelope is a typical NeuraCraft error body.
const typicalEnvelope = `{"error":{"code":"not_found","message":"Pipeline pipe_abc123 was not found in workspace ws_42."}}`

// typicalResponse builds a typical failed response, as a caller of
// FromResponse or a test would: a 404 with the envelope above, its
// Content-Type and X-Request-Id, and a body read from a string.
func typicalResponse() *http.Response {
	return &http.Response{
		StatusCode: http.StatusNotFound,
		Header:     http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_01HF8ZK2QW7Y"}},
		Body:       io.NopCloser(strings.NewReader(typicalEnvelope)),
	}
}

// plainReadUnmarshal is the floor of decoding resp: reading its body
// with io.ReadAll and unmarshalling it into a plain struct of the
// envelope's two fields, with nothing lenient, cleaned or bounded.
func plainReadUnmarshal(resp *http.Response) (code, message string, err error) {
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return "", "", err
	}
	var env struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	err = json.Unmarshal(data, &env)
	return env.Error.Code, env.Error.Message, err
}

// TestFromResponseAllocations: decoding a typical envelope, building the
// response included, costs at most 6 allocations more than building the
// same response and reading it the plain way (docs/performance.md,
// docs/errors.md).
func TestFromResponseAllocations(t *testing.T) { // not parallel: AllocsPerRun
	decoded := testing.AllocsPerRun(500, func() {
		if neuracraft.FromResponse(typicalResponse()) == nil {
			panic("FromResponse = nil")
		}
	})
	floor := testing.AllocsPerRun(500, func() {
		if _, msg, err := plainReadUnmarshal(typicalResponse()); err != nil || msg == "" {
			panic("plain read and unmarshal failed")
		}
	})
	t.Logf("FromResponse: %v allocations; building, reading and unmarshalling plainly: %v", decoded, floor)
	assert.LessOrEqual(t, decoded, floor+6, "allocations of FromResponse beyond the floor")

	// What the allocations buy.
	var apiErr *neuracraft.APIError
	require.True(t, errors.As(neuracraft.FromResponse(typicalResponse()), &apiErr))
	type view struct {
		StatusCode                   int
		Code                         neuracraft.Code
		Reason, Message, RequestID   string
		Body                         string
		Truncated, HasErr, HasHeader bool
	}
	want := view{StatusCode: 404, Code: neuracraft.CodeNotFound, Reason: "not_found",
		Message: "Pipeline pipe_abc123 was not found in workspace ws_42.", RequestID: "req_01HF8ZK2QW7Y",
		Body: typicalEnvelope, HasHeader: true}
	got := view{StatusCode: apiErr.StatusCode, Code: apiErr.Code, Reason: apiErr.Reason, Message: apiErr.Message,
		RequestID: apiErr.RequestID, Body: string(apiErr.Body), Truncated: apiErr.Truncated, HasErr: apiErr.Err != nil,
		HasHeader: apiErr.Header != nil}
	assert.Empty(t, cmp.Diff(want, got), "FromResponse (-want +got)")
}

// BenchmarkFromResponse decodes a failed response into an *APIError.
// Compare "typical" with BenchmarkPlainReadUnmarshal: both build the
// response they read.
func BenchmarkFromResponse(b *testing.B) {
	b.Run("typical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if neuracraft.FromResponse(typicalResponse()) == nil {
				b.Fatal("FromResponse = nil")
			}
		}
	})
	b.Run("1MiB", func(b *testing.B) {
		page := bytes.Repeat([]byte("<p>upstream failed</p>\n"), (1<<20)/23+1)[:1<<20]
		body := new(benchBody)
		resp := &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{"Content-Type": {"text/html"}},
			Body: body, ContentLength: int64(len(page))}
		b.ReportAllocs()
		for b.Loop() {
			body.Reset(page) // a fresh body for almost nothing
			if neuracraft.FromResponse(resp) == nil {
				b.Fatal("FromResponse = nil")
			}
		}
	})
}

// benchBody is a response body that Reset refills without allocating.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// BenchmarkPlainReadUnmarshal is the floor for BenchmarkFromResponse/typical:
// what a caller pays to build the same response, read its body and
// unmarshal it into a plain struct of its shape.
func BenchmarkPlainReadUnmarshal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, msg, err := plainReadUnmarshal(typicalResponse()); err != nil || msg == "" {
			b.Fatal("plain read and unmarshal failed", err)
		}
	}
}
