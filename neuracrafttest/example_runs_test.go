package neuracrafttest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// This example scripts the runs of a pipeline: running for two polls,
// each answered with Retry-After: 2, then failed with the PDF Export
// plugin's code.
func ExampleServer_ScriptRuns() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	call := func(method, path, body string, out any) http.Header {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("X-API-Key", srv.APIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			panic(err)
		}
		return resp.Header
	}
	var pipeline struct{ ID string }
	call("POST", "/pipelines", `{"name":"invoices"}`, &pipeline)

	srv.ScriptRuns(pipeline.ID, neuracrafttest.RunFailed(8102, "PDF Export Plugin: invalid template.").
		WithPolls("running", 2).WithRetryAfter("2").WithPluginID("pdf-export-1"))

	var run struct {
		RunID  string `json:"run_id"`
		Status string
		Error  json.RawMessage
	}
	call("POST", "/pipelines/"+pipeline.ID+"/run", "", &run)
	fmt.Println("started:", run.Status)
	for range 3 {
		h := call("GET", "/runs/"+run.RunID, "", &run)
		fmt.Printf("%s, Retry-After %q\n", run.Status, h.Get("Retry-After"))
	}
	fmt.Println(string(run.Error))
	// Output:
	// started: queued
	// running, Retry-After "2"
	// running, Retry-After "2"
	// failed, Retry-After ""
	// {"code":8102,"message":"PDF Export Plugin: invalid template.","plugin_id":"pdf-export-1"}
}
