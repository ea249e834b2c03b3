// Examples of handling NeuraCraft errors. In a program the error comes from
// a client made by neuracraft.WrapClient; here FromResponse decodes a
// recorded response so that the examples run on their own.

package neuracraft_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/neuracraft/neuracraft-go"
)

// Reach the fields of a failure with errors.As, through any wrapping.
func ExampleAPIError() {
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-ID", "req_abc123")
	rec.WriteHeader(http.StatusNotFound)
	rec.WriteString(`{"error": {"code": "not_found", "message": "Pipeline pipe_1 not found."}}`)
	err := fmt.Errorf("loading pipeline: %w", neuracraft.FromResponse(rec.Result()))

	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) {
		// apiErr.StatusCode is the HTTP status (404), apiErr.Reason the
		// body's string code ("not_found") and apiErr.RequestID the ID to
		// quote when reporting the error ("req_abc123").
		fmt.Println(apiErr.Code) // the most specific NeuraCraft code, named
	}
	fmt.Println(err)
	// Output:
	// 404 Not Found
	// loading pipeline: neuracraft: 404 Not Found: Pipeline pipe_1 not found. (request req_abc123)
}

// Branch on the kind of failure with errors.Is and the sentinel errors.
func Example_errorsIs() {
	resp := &http.Response{
		StatusCode: http.StatusNotFound,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"error": {"code": "not_found", "message": "Pipeline pipe_1 not found."}}`)),
	}
	err := neuracraft.FromResponse(resp)

	switch {
	case errors.Is(err, neuracraft.ErrNotFound):
		fmt.Println("no such pipeline")
	case errors.Is(err, neuracraft.ErrUnauthorized), errors.Is(err, neuracraft.ErrForbidden):
		fmt.Println("check the API key and its scopes")
	case neuracraft.IsRetryable(err): // could trying again help? (whether the request may be sent again is DefaultShouldRetry's question)
		fmt.Println("try again later")
	case err != nil:
		fmt.Println("failed:", err)
	}
	// Output: no such pipeline
}

// IsRetryable says whether sending the same request again can help.
func ExampleIsRetryable() {
	for _, status := range []int{400, 404, 429, 500, 503} {
		rec := httptest.NewRecorder()
		rec.WriteHeader(status)
		err := neuracraft.FromResponse(rec.Result())
		fmt.Println(status, neuracraft.IsRetryable(err))
	}

	// A body's "retryable" flag overrides the status.
	rec := httptest.NewRecorder()
	rec.WriteHeader(http.StatusBadRequest)
	rec.WriteString(`{"error": {"code": "index_rebuilding", "message": "Index is rebuilding.", "retryable": true}}`)
	fmt.Println("400 with \"retryable\": true:", neuracraft.IsRetryable(neuracraft.FromResponse(rec.Result())))
	// Output:
	// 400 false
	// 404 false
	// 429 true
	// 500 true
	// 503 true
	// 400 with "retryable": true: true
}

// Every code of the reference says what to do about it.
func ExampleCode_Resolution() {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "30")
	rec.WriteHeader(http.StatusTooManyRequests)
	err := neuracraft.FromResponse(rec.Result())

	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code.Description())
		fmt.Println(apiErr.Code.Resolution())
		fmt.Println("wait:", apiErr.RetryAfter)
	}
	// Output:
	// Rate limit exceeded.
	// Wait before retrying. Check Retry-After header if provided.
	// wait: 30s
}

// A plugin's failure carries its plugin code in the body while the status
// line says 500. Test for one plugin code with errors.Is and a Code, or for
// any plugin failure with ErrPlugin.
func ExamplePluginCode() {
	code, err := neuracraft.PluginCode(102) // the PDF Export plugin's identifier
	if err != nil {
		panic(err)
	}
	id, _ := code.PluginID()
	fmt.Println(int(code), id, code == neuracraft.Code(8102))

	rec := httptest.NewRecorder()
	rec.WriteHeader(http.StatusInternalServerError)
	rec.WriteString(`{"error": {"code": 8102, "message": "PDF Export Plugin: Failed to generate document due to invalid template."}}`)
	err = neuracraft.FromResponse(rec.Result())

	if errors.Is(err, neuracraft.Code(8102)) {
		// the PDF export failed; the message says why (here an invalid
		// template: fix it, retrying will not help)
		fmt.Println("the PDF export failed")
	}
	fmt.Println("plugin failure:", neuracraft.IsPlugin(err))               // errors.Is(err, neuracraft.ErrPlugin)
	fmt.Println("internal error:", errors.Is(err, neuracraft.ErrInternal)) // the HTTP status counts too
	// Output:
	// 8102 102 true
	// the PDF export failed
	// plugin failure: true
	// internal error: true
}

// A plugin's Go package registers its codes once, usually from init, so
// that errors name them and IsRetryable knows whether they are transient.
func ExampleRegisterPluginCodes() {
	if err := neuracraft.RegisterPluginCodes(
		neuracraft.PluginCodeInfo{Code: 8102, Name: "PDF Export Failed"},
	); err != nil {
		panic(err)
	}

	rec := httptest.NewRecorder()
	rec.Header().Set("X-Request-ID", "req_7c1e")
	rec.WriteHeader(http.StatusServiceUnavailable)
	rec.WriteString(`{"error": {"code": 8102, "message": "PDF Export Plugin: Failed to generate document due to invalid template."}}`)
	err := neuracraft.FromResponse(rec.Result())

	fmt.Println(err)
	// The registration did not set Retryable: even on a 503, sending the
	// same template again cannot help.
	fmt.Println("retryable:", neuracraft.IsRetryable(err))
	// Output:
	// neuracraft: 8102 PDF Export Failed: PDF Export Plugin: Failed to generate document due to invalid template. (HTTP 503, request req_7c1e)
	// retryable: false
}
