// Examples of Transport and WrapClient (transport.go) and of what a caller
// sets on them: the retry policy, a custom retry rule, a Retry-After too long
// to wait for, and the retries logged.

package neuracraft_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// A service wraps the client it already has; NeuraCraft failures then come
// out of client.Do as errors that errors.Is and errors.As understand.
func ExampleWrapClient() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	client := neuracraft.WrapClient(&http.Client{Timeout: 30 * time.Second})
	req, err := http.NewRequest("GET", srv.URL+"/pipelines/pipe_1", nil)
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("X-API-Key", srv.APIKey)
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, neuracraft.ErrNotFound):
		fmt.Println("no such pipeline")
	case neuracraft.DefaultShouldRetry(req, err): // method-aware; IsRetryable is not
		slog.Warn("neuracraft busy; safe to send again later", "err", neuracraft.LogValue(err))
	case err != nil:
		slog.Error("get pipeline failed", "err", neuracraft.LogValue(err))
	default:
		defer resp.Body.Close()
		fmt.Println("found it")
	}
	// Output: no such pipeline
}

// Every option of the Transport has a default; set only what you need.
// Here a service that is down answers 503 every time: the Transport makes
// three attempts, as MaxAttempts says, reports each retry, and returns the
// last answer.
func ExampleTransport() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	srv.Fail("GET /pipelines", 5, neuracrafttest.Error(503, "service_unavailable", "Back in a moment."))

	transport := &neuracraft.Transport{
		Retry: neuracraft.RetryPolicy{
			MaxAttempts: 3,                     // the first attempt included; 1 turns retries off
			BaseDelay:   10 * time.Millisecond, // the backoff before the first retry, doubled for each next one
		},
		DisableBudget: true, // every call may make all its attempts, however the host fails
		OnRetry:       func(ev neuracraft.RetryEvent) { fmt.Println("retrying after attempt", ev.Attempt) },
	}
	client := &http.Client{Transport: transport}
	req, _ := http.NewRequest("GET", srv.URL+"/pipelines", nil)
	req.Header.Set("X-API-Key", srv.APIKey)
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code, "after", apiErr.Attempts, "attempts")
	}
	// Output:
	// retrying after attempt 1
	// retrying after attempt 2
	// 503 Service Unavailable after 3 attempts
}

// A Retry-After longer than MaxRetryAfter is not slept: the error comes
// back at once, and the caller can schedule the next try.
func ExampleAPIError_RetryAfter() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	srv.Fail("GET /pipelines", 1, neuracrafttest.RateLimit("3600"))

	client := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}
	_, err := client.Do(context.Background(), "GET", "/pipelines", nil, nil)
	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) && errors.Is(err, neuracraft.ErrRateLimited) {
		fmt.Println("try again in", apiErr.RetryAfter)
	}
	// Output: try again in 1h0m0s
}

// A custom rule can retry more (here: 409 Conflict) or less than the
// default, and fall back to DefaultShouldRetry for the rest.
func ExampleRetryPolicy_shouldRetry() {
	policy := neuracraft.RetryPolicy{
		ShouldRetry: func(req *http.Request, err error) bool {
			if errors.Is(err, neuracraft.Code(http.StatusConflict)) {
				return true
			}
			return neuracraft.DefaultShouldRetry(req, err)
		},
	}
	req, _ := http.NewRequest("POST", "https://api.neuracraft.com/v1/pipelines", nil)
	fmt.Println(policy.ShouldRetry(req, &neuracraft.APIError{StatusCode: 409, Code: 409}))
	fmt.Println(policy.ShouldRetry(req, &neuracraft.APIError{StatusCode: 500, Code: 500}))
	// Output:
	// true
	// false
}

// LogRetries logs one line per retry. Here the log drops the time, URL and
// delay, which change from run to run.
func ExampleLogRetries() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	srv.Fail("GET /pipelines", 1, neuracrafttest.Error(503, "maintenance", "Back in a moment."))
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "url" || a.Key == "delay" {
				return slog.Attr{}
			}
			return a
		},
	}))

	transport := &neuracraft.Transport{OnRetry: neuracraft.LogRetries(logger)}
	client := &http.Client{Transport: transport}
	req, _ := http.NewRequest("GET", srv.URL+"/pipelines", nil)
	req.Header.Set("X-API-Key", srv.APIKey)
	req.Header.Set("X-Request-ID", "req_example")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("status:", resp.StatusCode)
	// Output:
	// level=WARN msg="neuracraft: retrying" method=GET request_id=req_example attempt=1 cause="503 Service Unavailable"
	// status: 200
}
