// Benchmarks of FromResponse: a typical error envelope beside a plain
// read-and-unmarshal of the same body (the floor any decoder pays), and a
// 1 MiB body of which only defaultMaxErrorBody is kept.

package neuracraft_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/neuracraft/neuracraft-go"
)

// benchBody is a response body that Reset refills without allocating, so
// that each iteration gets a fresh body for almost nothing.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// benchEnvelope is a typical NeuraCraft error body (130 bytes).
var benchEnvelope = []byte(`{"error": {"code": "rate_limited", "message": "Rate limit exceeded for workspace ws_42: 600 requests per minute. Retry after 30 seconds."}}`)

// BenchmarkFromResponse decodes a failed response into an *APIError.
// Compare "typical" with BenchmarkPlainReadUnmarshal.
func BenchmarkFromResponse(b *testing.B) {
	benchmarks := []struct {
		name   string
		status int
		header http.Header
		body   []byte
	}{
		{"typical", http.StatusTooManyRequests, http.Header{
			"Content-Type": {"application/json"},
			"X-Request-Id": {"req_01HF8ZK2QW7Y"},
			"Retry-After":  {"30"},
		}, benchEnvelope},
		{"1MiB", http.StatusBadGateway, http.Header{
			"Content-Type": {"text/html"},
		}, bytes.Repeat([]byte("<p>upstream failed</p>\n"), (1<<20)/23+1)[:1<<20]},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			body := new(benchBody)
			resp := &http.Response{StatusCode: bm.status, Header: bm.header, Body: body, ContentLength: int64(len(bm.body))}
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(bm.body)
				if neuracraft.FromResponse(resp) == nil {
					b.Fatal("FromResponse = nil")
				}
			}
		})
	}
}

// BenchmarkPlainReadUnmarshal is the floor for BenchmarkFromResponse/typical:
// what a caller pays to read the same body and unmarshal it into a plain
// struct of its shape, with nothing lenient, cleaned or bounded.
func BenchmarkPlainReadUnmarshal(b *testing.B) {
	body := new(benchBody)
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Body: body, ContentLength: int64(len(benchEnvelope))}
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(benchEnvelope)
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		var env struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(data, &env); err != nil || env.Error.Message == "" {
			b.Fatal(err)
		}
	}
}
