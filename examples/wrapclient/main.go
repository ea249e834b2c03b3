// Command wrapclient shows how a service adds neuracraft-go to the
// http.Client it already has: three lines, and every NeuraCraft failure
// comes back as a typed error that errors.Is and errors.As understand.
//
//	go run ./examples/wrapclient
//
// Like quickstart, it uses a fake NeuraCraft unless NEURACRAFT_BASE_URL and
// NEURACRAFT_API_KEY are set.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

func main() {
	if err := run(context.Background(), os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "wrapclient:", err)
		os.Exit(1)
	}
}

// errNoSuchPipeline is the service's own error for a missing pipeline.
var errNoSuchPipeline = errors.New("no such pipeline")

func run(ctx context.Context, w io.Writer, getenv func(string) string) error {
	baseURL, key := getenv(neuracraft.EnvBaseURL), getenv(neuracraft.EnvAPIKey)
	if baseURL == "" {
		srv := neuracrafttest.NewServer()
		defer srv.Close()
		baseURL, key = srv.URL, srv.APIKey
	}

	// The client the service already has, with its own settings.
	existing := &http.Client{Timeout: 30 * time.Second}

	// The three lines: wrap it, and use the copy for NeuraCraft calls.
	client := neuracraft.WrapClient(existing)
	_, err := getPipeline(ctx, client, baseURL, key, "pipe_does_not_exist")

	if !errors.Is(err, errNoSuchPipeline) {
		return fmt.Errorf("expected %v, got %v", errNoSuchPipeline, err)
	}
	fmt.Fprintln(w, "pipe_does_not_exist: the 404 became the service's own error:", errNoSuchPipeline)
	var apiErr *neuracraft.APIError
	if errors.As(err, &apiErr) {
		fmt.Fprintf(w, "and the NeuraCraft detail is still there: %s, request %s\n", apiErr.Code, apiErr.RequestID)
	}

	// Logging it: the error is a *url.Error, whose text carries the URL as
	// sent (query included) and hides the fields; LogValue logs the fields,
	// redacted.
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: withoutTime}))
	logger.Error("get pipeline failed", "err", neuracraft.LogValue(err))
	return nil
}

// withoutTime drops slog's time attribute, so the output can be compared.
func withoutTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// getPipeline is the service's own code: plain net/http, with NeuraCraft's
// failures checked through errors.Is and errors.As.
func getPipeline(ctx context.Context, client *http.Client, baseURL, key, id string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/pipelines/"+id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", key)
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, neuracraft.ErrNotFound):
		return nil, fmt.Errorf("%w: %w", errNoSuchPipeline, err)
	case neuracraft.DefaultShouldRetry(req, err):
		// Safe to send again later: DefaultShouldRetry knows the method.
		// (IsRetryable answers "could trying again help?", not "may I
		// send this again?".)
		return nil, fmt.Errorf("neuracraft busy, try later: %w", err)
	case err != nil:
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
