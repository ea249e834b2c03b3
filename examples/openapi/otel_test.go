// Tests of what OpenTelemetry records around the Transport: otelhttp
// outside it or as its Base, and ogen's own span of an operation.

package main

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/examples/openapi/ogenclient"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
)

// span is what a test reads of one ended span.
type span struct {
	status int        // http.response.status_code; 0 when absent
	code   codes.Code // the span's status
}

// spansOf returns the ended spans of rec, in the order they ended.
func spansOf(rec *tracetest.SpanRecorder) []span {
	var out []span
	for _, s := range rec.Ended() {
		sp := span{code: s.Status().Code}
		for _, kv := range s.Attributes() {
			if kv.Key == semconv.HTTPResponseStatusCodeKey {
				sp.status = int(kv.Value.AsInt64())
			}
		}
		out = append(out, sp)
	}
	return out
}

// TestOtelHTTPPlacement: a GET answered 503 (Retry-After: 1) and then 404.
// otelhttp outside a Transport that returns error answers as responses
// records one span for the call, with the final status; outside one that
// returns errors, one span without a status; as the Transport's Base, one
// span per attempt, each with its status.
func TestOtelHTTPPlacement(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		transport func(tp *sdktrace.TracerProvider, base http.RoundTripper) http.RoundTripper
		want      []span
	}{
		{"outside, ReturnErrorResponses", func(tp *sdktrace.TracerProvider, base http.RoundTripper) http.RoundTripper {
			return otelhttp.NewTransport(&neuracraft.Transport{Base: base, ReturnErrorResponses: true}, otelhttp.WithTracerProvider(tp))
		}, []span{{status: 404, code: codes.Error}}},
		{"outside, errors", func(tp *sdktrace.TracerProvider, base http.RoundTripper) http.RoundTripper {
			return otelhttp.NewTransport(&neuracraft.Transport{Base: base}, otelhttp.WithTracerProvider(tp))
		}, []span{{code: codes.Error}}},
		{"as Base", func(tp *sdktrace.TracerProvider, base http.RoundTripper) http.RoundTripper {
			return &neuracraft.Transport{Base: otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp))}
		}, []span{{status: 503, code: codes.Error}, {status: 404, code: codes.Error}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := neuracrafttest.NewServer()
			defer srv.Close()
			srv.Fail("GET /pipelines/{id}", 1, neuracrafttest.Error(503, "unavailable", "Busy").WithHeader("Retry-After", "1"))
			synctest.Test(t, func(t *testing.T) {
				rec := tracetest.NewSpanRecorder()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
				client := &http.Client{Transport: tc.transport(tp, &http.Transport{DisableKeepAlives: true})}
				req, err := http.NewRequest("GET", srv.URL+"/pipelines/pipe_missing", nil)
				require.NoError(t, err)
				req.Header.Set("X-API-Key", srv.APIKey)
				resp, err := client.Do(req)
				var apiErr *neuracraft.APIError
				if err == nil {
					require.ErrorAs(t, neuracraft.FromResponse(resp), &apiErr, "through otelhttp's body wrapper")
				} else {
					require.ErrorAs(t, err, &apiErr)
				}
				assert.Equal(t, neuracraft.Code(404), apiErr.Code)
				assert.Equal(t, 2, apiErr.Attempts, "the 503 was retried")
				assert.Equal(t, tc.want, spansOf(rec))
			})
		})
	}
}

// TestOgenSpan: ogen's own span of an operation answered 404 ends in error
// at the stage "SendRequest" when the Transport returns errors, and with
// its status unset when the 404 comes back as a response, as it does
// over a plain http.Client.
func TestOgenSpan(t *testing.T) {
	t.Parallel()
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   sdktrace.Status
	}{
		{"errors", newHTTPClient(false), sdktrace.Status{Code: codes.Error, Description: "SendRequest"}},
		{"ReturnErrorResponses", newHTTPClient(true), sdktrace.Status{Code: codes.Unset}},
		{"plain http.Client", &http.Client{}, sdktrace.Status{Code: codes.Unset}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			c, err := newOgenClient(srv.URL, srv.APIKey, tc.client, ogenclient.WithTracerProvider(tp))
			require.NoError(t, err)
			_, _ = c.GetPipeline(context.Background(), ogenclient.GetPipelineParams{ID: "pipe_missing"})
			ended := rec.Ended()
			require.Len(t, ended, 1)
			assert.Equal(t, "getPipeline", attrValue(ended[0].Attributes(), "oas.operation"))
			assert.Equal(t, tc.want, ended[0].Status())
		})
	}
}

// attrValue returns the value of key in kvs, as text, or "".
func attrValue(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.AsString()
		}
	}
	return ""
}
