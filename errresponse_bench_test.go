// Benchmarks of the response mode (errresponse.go): what
// ReturnErrorResponses costs a success and a failure.

package neuracraft

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkErrorResponses compares a Transport with ReturnErrorResponses
// off (the default) and on: a success, which the option must leave as
// it costs, and a 404 answer, returned as an *APIError or as a response.
// The Base answers from memory, so only the Transport's work counts. Run
// with:
//
//	go test -run '^$' -bench 'ErrorResponses|TransportOverhead' -benchmem -count 10 .
func BenchmarkErrorResponses(b *testing.B) {
	const envelope = `{"error":{"code":"not_found","message":"Pipeline 'pipe_1' not found."}}`
	ok := &http.Response{StatusCode: 200, Body: http.NoBody}
	success := roundTripFunc(func(*http.Request) (*http.Response, error) { return ok, nil })
	notFound := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 404, Request: req,
			Header:        http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req_1"}},
			Body:          io.NopCloser(strings.NewReader(envelope)),
			ContentLength: int64(len(envelope))}, nil
	})
	req, err := http.NewRequest("GET", "https://api.neuracraft.com/v1/pipelines/pipe_1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-API-Key", "nc_bench")
	req.Header.Set("X-Request-ID", "req_caller") // no ID to generate: the Transport's own work only
	for _, base := range []struct {
		name string
		rt   http.RoundTripper
	}{{"success", success}, {"404", notFound}} {
		for _, on := range []bool{false, true} {
			name := base.name + "/option=off"
			if on {
				name = base.name + "/option=on"
			}
			b.Run(name, func(b *testing.B) {
				tr := &Transport{Base: base.rt, ReturnErrorResponses: on}
				b.ReportAllocs()
				for b.Loop() {
					resp, err := tr.RoundTrip(req)
					if resp != nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if wantErr := base.name == "404" && !on; (err != nil) != wantErr {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
