package neuracrafttest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// This example makes the fake API refuse the first request to a route with a
// rate limit, as a test of a client's retry logic would.
func Example() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	srv.Fail("POST /pipelines", 1, neuracrafttest.RateLimit("1"))

	for range 2 {
		req, err := http.NewRequest("POST", srv.URL+"/pipelines", strings.NewReader(`{"name":"nightly"}`))
		if err != nil {
			panic(err)
		}
		req.Header.Set("X-API-Key", srv.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s (Retry-After %q)\n", resp.Status, resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusCreated {
			fmt.Println(string(body))
		}
	}

	for _, r := range srv.RequestsFor("POST /pipelines") {
		fmt.Printf("%s %s fault=%q\n", r.Method, r.Path, r.Fault)
	}

	// Output:
	// 429 Too Many Requests (Retry-After "1")
	// {"error":{"code":"rate_limit_exceeded","message":"Rate limit exceeded. Retry after the delay in the Retry-After header."}}
	// 201 Created (Retry-After "")
	// POST /v1/pipelines fault="rate_limit"
	// POST /v1/pipelines fault=""
}

// This example queues faults for one route and for every route; each request
// takes the earliest queued fault that applies to it.
func ExampleServer_Fail() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	srv.Fail("GET /plugins", 2, neuracrafttest.ProxyHTML(502))
	srv.Fail("*", 1, neuracrafttest.Error(503, "service_unavailable", "Scheduled maintenance").
		WithHeader("Retry-After", "30"))

	for range 4 {
		req, _ := http.NewRequest("GET", srv.URL+"/plugins", nil)
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	}

	// Output:
	// 502 Bad Gateway text/html
	// 502 Bad Gateway text/html
	// 503 Service Unavailable application/json
	// 200 OK application/json
}
