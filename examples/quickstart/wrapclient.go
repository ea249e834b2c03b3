package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/neuracraft/neuracraft-go"
)

// walkWrapClient is the headline path, before the JSON client: a service
// keeps its own http.Client and plain net/http code, wraps the client once
// with neuracraft.WrapClient, and checks NeuraCraft's failures with
// errors.Is and errors.As.
func walkWrapClient(ctx context.Context, w io.Writer, baseURL, key string) error {
	fmt.Fprintln(w, "\n0. Wrap the http.Client you already have (WrapClient)")
	// The client the service already has, with its own settings: the
	// wrapped copy keeps them.
	existing := &http.Client{Timeout: 30 * time.Second}
	client := neuracraft.WrapClient(existing)

	// A success passes through untouched: read and close the body as usual.
	n, err := get(ctx, client, baseURL+"/pipelines", key)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   GET /pipelines: succeeded, %d bytes of JSON, passed through unbuffered\n", n)

	// A failure comes back as an error that errors.Is and errors.As know.
	_, err = get(ctx, client, baseURL+"/pipelines/pipe_missing", key)
	var apiErr *neuracraft.APIError
	if !errors.Is(err, neuracraft.ErrNotFound) || !errors.As(err, &apiErr) {
		return fmt.Errorf("expected a 404, got %v", err)
	}
	fmt.Fprintf(w, "   GET /pipelines/pipe_missing: errors.Is(err, neuracraft.ErrNotFound) is true; %s, request %s\n",
		apiErr.Code, apiErr.RequestID)
	fmt.Fprintln(w, "   The steps below use neuracraft.Client, the JSON client built on the same Transport.")
	return nil
}

// get is a service's own net/http code: it returns the length of the body
// of a success, and NeuraCraft's error otherwise.
func get(ctx context.Context, client *http.Client, url, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-Key", key)
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, neuracraft.ErrNotFound):
		return 0, err // the caller decides what a missing pipeline means
	case neuracraft.DefaultShouldRetry(req, err):
		// Safe to send again later: DefaultShouldRetry knows the method.
		// (IsRetryable answers "could trying again help?", not "may I send
		// this again?".) The Transport already retried what it could.
		return 0, fmt.Errorf("neuracraft busy, try again later: %w", err)
	case err != nil:
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return len(body), err
}
