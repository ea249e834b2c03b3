package main

import (
	"context"
	"net/http"

	"github.com/neuracraft/neuracraft-go/examples/openapi/oapiclient"
	"github.com/neuracraft/neuracraft-go/examples/openapi/ogenclient"
)

// newOapiClient returns the oapi-codegen client of the API at baseURL,
// which sends its requests with hc and authenticates them with apiKey.
func newOapiClient(baseURL, apiKey string, hc *http.Client) (*oapiclient.ClientWithResponses, error) {
	return oapiclient.NewClientWithResponses(baseURL, oapiclient.WithHTTPClient(hc),
		oapiclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("X-API-Key", apiKey)
			return nil
		}))
}

// newOgenClient returns the ogen client of the API at baseURL, which sends
// its requests with hc and authenticates them with apiKey. opts come
// after the client's own (a tracer provider, for example).
func newOgenClient(baseURL, apiKey string, hc *http.Client, opts ...ogenclient.ClientOption) (*ogenclient.Client, error) {
	return ogenclient.NewClient(baseURL, keySource(apiKey), append([]ogenclient.ClientOption{ogenclient.WithClient(hc)}, opts...)...)
}

// keySource is the ogen client's source of the API key.
type keySource string

func (k keySource) ApiKey(context.Context, ogenclient.OperationName) (ogenclient.ApiKey, error) {
	return ogenclient.ApiKey{APIKey: string(k)}, nil
}
