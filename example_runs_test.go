// Examples of runs (runs.go): starting a run and waiting for its end.

package neuracraft_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// StartRun starts a pipeline run and WaitRun polls it until it ends. A run
// that fails comes back as a *RunError, checked like any other error.
// Here the runs of the fake server are scripted to end at their first
// poll.
func ExampleClient_WaitRun() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	client := &neuracraft.Client{BaseURL: srv.URL, APIKey: srv.APIKey}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var pipeline struct {
		ID string `json:"id"`
	}
	if _, err := client.Do(ctx, "POST", "/pipelines", map[string]string{"name": "invoices"}, &pipeline); err != nil {
		log.Fatal(err)
	}

	srv.ScriptRuns(pipeline.ID, neuracrafttest.RunCompleted(map[string]int{"pages": 3}))
	run, err := client.StartRun(ctx, pipeline.ID, map[string]string{"invoice": "inv_42"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("started:", run.Status)
	run, err = client.WaitRun(ctx, run.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended:", run.Status, string(run.Output))

	srv.ScriptRuns(pipeline.ID, neuracrafttest.RunFailed(8102,
		"PDF Export Plugin: Failed to generate document due to invalid template.").WithPluginID("pdf-export-1"))
	run, err = client.StartRun(ctx, pipeline.ID, map[string]string{"invoice": "inv_43"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.WaitRun(ctx, run.ID)
	var runErr *neuracraft.RunError
	if errors.As(err, &runErr) {
		// runErr.Code, PluginID, Message and RequestID say what failed
		// where; a code in 8000-8999 comes from a plugin.
		fmt.Println("run error from a plugin:", runErr.Code.IsPlugin())
	}
	if errors.Is(err, neuracraft.Code(8102)) {
		// the PDF template is invalid: fix it, running again will not help
		fmt.Println("fix the template")
	}
	fmt.Println("run failed:", errors.Is(err, neuracraft.ErrRunFailed))
	fmt.Println("plugin:", errors.Is(err, neuracraft.ErrPlugin))
	fmt.Println("not found:", errors.Is(err, neuracraft.ErrNotFound))
	fmt.Println("retryable:", neuracraft.IsRetryable(err))
	// Output:
	// started: queued
	// ended: completed {"pages":3}
	// run error from a plugin: true
	// fix the template
	// run failed: true
	// plugin: true
	// not found: false
	// retryable: false
}
