// Examples of Client (client.go), run against the fake server of
// neuracrafttest.

package neuracraft_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// A Client sends JSON, decodes JSON, and returns failures as errors that
// errors.Is understands. Here it talks to the fake server from
// neuracrafttest, as a test of your own code would.
func ExampleClient() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	// In production: &neuracraft.Client{} reads NEURACRAFT_BASE_URL and
	// NEURACRAFT_API_KEY from the environment.
	client := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}
	ctx := context.Background()

	type pipeline struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	var created pipeline
	resp, err := client.Do(ctx, "POST", "/pipelines", map[string]string{"name": "nightly-etl"}, &created)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", resp.StatusCode, "location set:", resp.Location != nil)

	// The Location of a 201 is an absolute URL under BaseURL: a valid path.
	var read pipeline
	if _, err := client.Do(ctx, "GET", resp.Location.String(), nil, &read); err != nil {
		log.Fatal(err)
	}
	fmt.Println("read back:", read.Name, read.ID == created.ID)

	_, err = client.Do(ctx, "GET", "/pipelines/pipe_missing", nil, nil)
	fmt.Println("not found:", errors.Is(err, neuracraft.ErrNotFound))
	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code, "-", apiErr.Message)
	}

	// Output:
	// created: 201 location set: true
	// read back: nightly-etl true
	// not found: true
	// 404 Not Found - Resource not found
}
