// Command quickstart walks through what neuracraft-go does, step by step.
//
// With no environment it starts a fake NeuraCraft (package neuracrafttest)
// in-process, so it needs no account and no network:
//
//	go run ./examples/quickstart
//
// With NEURACRAFT_BASE_URL and NEURACRAFT_API_KEY set it talks to that
// server instead, and skips the steps that need a scripted failure.
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
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// pdfExportFailed is what the PDF Export plugin's Go package would
// register: its code 8102, by name, and whether retrying helps.
var pdfExportFailed = neuracraft.PluginCodeInfo{
	Code:        8102,
	Name:        "PDF Export Failed",
	Description: "The PDF Export plugin failed to generate the document, for example because of an invalid template.",
	Retryable:   false,
}

// pdfExportMessage is the PDF Export plugin's message in the fake's
// scripted failures.
const pdfExportMessage = "PDF Export Plugin: Failed to generate document due to invalid template."

// run is the whole walk-through; getenv is os.Getenv, replaced in tests.
func run(ctx context.Context, w io.Writer, getenv func(string) string) error {
	if err := neuracraft.RegisterPluginCodes(pdfExportFailed); err != nil {
		return err
	}
	// The retry hook logs each retry with slog; times are left out so
	// that the output reads the same on every run.
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	client := &neuracraft.Client{
		BaseURL: getenv(neuracraft.EnvBaseURL),
		APIKey:  getenv(neuracraft.EnvAPIKey),
	}
	var srv *neuracrafttest.Server
	if client.BaseURL == "" {
		srv = neuracrafttest.NewServer()
		defer srv.Close()
		client.BaseURL, client.APIKey = srv.URL, srv.APIKey
		fmt.Fprintln(w, "No NEURACRAFT_BASE_URL set: talking to a fake NeuraCraft on", srv.URL)
	} else {
		fmt.Fprintln(w, "Talking to", client.BaseURL)
	}
	client.HTTPClient = &http.Client{Transport: &neuracraft.Transport{OnRetry: neuracraft.LogRetries(logger)}}

	if err := walkWrapClient(ctx, w, client.BaseURL, client.APIKey); err != nil {
		return err
	}

	step := func(n int, title string) { fmt.Fprintf(w, "\n%d. %s\n", n, title) }

	step(1, "Create a pipeline (201 Created, Location header)")
	var created struct {
		ID string `json:"id"`
	}
	resp, err := client.Do(ctx, "POST", "/pipelines", map[string]string{"name": "quickstart"}, &created)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   %d %s: pipeline %s, at %s\n", resp.StatusCode, neuracraft.Code(resp.StatusCode).Name(), created.ID, resp.Location)

	step(2, "Read a pipeline that does not exist (404 -> ErrNotFound)")
	_, err = client.Do(ctx, "GET", "/pipelines/pipe_missing", nil, nil)
	var apiErr *neuracraft.APIError
	switch {
	case errors.Is(err, neuracraft.ErrNotFound) && errors.As(err, &apiErr):
		fmt.Fprintf(w, "   errors.Is(err, neuracraft.ErrNotFound) is true; quote request %s to support\n", apiErr.RequestID)
		fmt.Fprintf(w, "   what to do: %s\n", apiErr.Code.Resolution())
	default:
		return fmt.Errorf("expected a 404, got %v", err)
	}

	if srv != nil {
		step(3, "A rate-limited call (429, Retry-After: 1) is retried for you")
		srv.Fail("GET /pipelines/{id}", 1, neuracrafttest.RateLimit("1"))
		start := time.Now()
		if _, err := client.Do(ctx, "GET", "/pipelines/"+created.ID, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(w, "   succeeded after waiting about %s, as the server asked; the log line above is the retry hook\n",
			time.Since(start).Round(time.Second))

		step(4, "A plugin fails with its own code (8102, sent as HTTP 500)")
		srv.Fail("POST /pipelines/{id}/run", 1, neuracrafttest.Plugin(500, 8102, pdfExportMessage, false))
		_, err = client.Do(ctx, "POST", "/pipelines/"+created.ID+"/run", nil, nil)
		if !neuracraft.IsPlugin(err) || !errors.As(err, &apiErr) {
			return fmt.Errorf("expected a plugin error, got %v", err)
		}
		fmt.Fprintf(w, "   IsPlugin: true, code %s, retryable: %v\n", apiErr.Code, neuracraft.IsRetryable(err))
		fmt.Fprintf(w, "   message: %s\n", apiErr.Message)
		fmt.Fprintf(w, "   what to do: %s\n", apiErr.Code.Resolution())
	}

	step(5, "Start a run and wait for its end (StartRun, WaitRun)")
	if srv != nil {
		// The fake's run stays "running" for one poll, whose answer asks
		// for the next poll in 1 s; WaitRun honours that.
		srv.ScriptRuns(created.ID, neuracrafttest.RunCompleted(map[string]any{"pages": 3}).
			WithPolls("running", 1).WithRetryAfter("1"))
	}
	run, err := client.StartRun(ctx, created.ID, map[string]string{"invoice": "inv_42"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   started run %s: %s\n", run.ID, run.Status)
	// WaitRun never sleeps past the deadline: it returns at once when the
	// next poll would come too late.
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	run, err = client.WaitRun(waitCtx, run.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "   run %s: %s, output %s\n", run.ID, run.Status, run.Output)

	if srv != nil {
		step(6, "A run that fails is an error like any other (*RunError)")
		srv.ScriptRuns(created.ID, neuracrafttest.RunFailed(8102, pdfExportMessage).WithPluginID("pdf-export-1"))
		run, err = client.StartRun(ctx, created.ID, map[string]string{"invoice": "inv_43"})
		if err != nil {
			return err
		}
		_, err = client.WaitRun(waitCtx, run.ID)
		var runErr *neuracraft.RunError
		if !errors.As(err, &runErr) {
			return fmt.Errorf("expected a failed run, got %v", err)
		}
		fmt.Fprintf(w, "   %v\n", err)
		fmt.Fprintf(w, "   ErrRunFailed: %v, Code(8102): %v, ErrPlugin: %v, ErrNotFound: %v, retryable: %v\n",
			errors.Is(err, neuracraft.ErrRunFailed), errors.Is(err, neuracraft.Code(8102)),
			errors.Is(err, neuracraft.ErrPlugin), errors.Is(err, neuracraft.ErrNotFound), neuracraft.IsRetryable(err))
		fmt.Fprintf(w, "   failed plugin: %s; quote request %s to support\n", runErr.PluginID, runErr.RequestID)
	} else {
		fmt.Fprintln(w, "\n(Steps 3, 4 and 6 script failures on the fake server; skipped against a real one.)")
	}
	fmt.Fprintln(w, "\nDone.")
	return nil
}
