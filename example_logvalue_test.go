// Examples of LogValue (logvalue.go): logging the error of a wrapped
// client.

package neuracraft_test

import (
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

// The errors of a wrapped client are *url.Error values, whose text holds
// the URL as sent; LogValue logs the NeuraCraft error inside, redacted.
func ExampleLogValue() {
	srv := neuracrafttest.NewServer()
	defer srv.Close()
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // for a stable output
			}
			if a.Key == "url" { // the fake's port changes from run to run
				return slog.String("url", strings.Replace(a.Value.String(), srv.URL, "https://api.neuracraft.com/v1", 1))
			}
			return a
		},
	}))

	client := neuracraft.WrapClient(nil)
	req, _ := http.NewRequest("GET", srv.URL+"/pipelines/pipe_1?api_key="+srv.APIKey, nil)
	req.Header.Set("X-API-Key", srv.APIKey)
	req.Header.Set("X-Request-ID", "req_example")
	_, err := client.Do(req)
	logger.Error("get pipeline failed", "err", neuracraft.LogValue(err))
	// Output:
	// level=ERROR msg="get pipeline failed" err.status=404 err.code=404 err.reason=not_found err.message="Resource not found" err.request_id=req_example err.attempts=1 err.method=GET err.url="https://api.neuracraft.com/v1/pipelines/pipe_1?api_key=REDACTED"
}
