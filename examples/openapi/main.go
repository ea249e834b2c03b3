// Command openapi shows neuracraft-go under API clients generated from an
// OpenAPI description (openapi.yaml: four operations of the NeuraCraft
// API, every failure declared as the API's error envelope), one by
// oapi-codegen and one by ogen. With Transport.ReturnErrorResponses set,
// the Transport still retries what is safe to retry, and then hands the
// final answer back as a response, so the generated clients fill their
// typed error results; FromResponse and WithLastError reach the
// *neuracraft.APIError of that answer. It runs offline, against the fake
// NeuraCraft of neuracrafttest:
//
//	cd examples/openapi && go run .
//
// It is a module of its own, so that the generators' runtimes are
// dependencies of this example only, never of the neuracraft package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/examples/openapi/ogenclient"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	srv := neuracrafttest.NewServer()
	defer srv.Close()

	// A Transport that returns error answers as responses, in a client
	// that WrapClient finishes (it keeps the Transport, and keeps the API
	// key from following a redirect to another host).
	hc := neuracraft.WrapClient(&http.Client{
		Transport: &neuracraft.Transport{ReturnErrorResponses: true},
	})
	oapi, err := newOapiClient(srv.URL, srv.APIKey, hc)
	if err != nil {
		return err
	}
	ogen, err := newOgenClient(srv.URL, srv.APIKey, hc)
	if err != nil {
		return err
	}

	// oapi-codegen: every answer is a response, typed by its status;
	// FromResponse has the *APIError of a failure, body read or not.
	r, err := oapi.GetPipelineWithResponse(ctx, "pipe_missing")
	if err != nil {
		return err // no answer: a network failure, a request held back
	}
	if r.JSON4XX != nil || r.JSON5XX != nil {
		var apiErr *neuracraft.APIError
		if errors.As(neuracraft.FromResponse(r.HTTPResponse), &apiErr) {
			fmt.Fprintf(w, "oapi-codegen: %d, %s\n", r.StatusCode(), apiErr)
		}
	}

	// ogen returns typed results only: WithLastError has the *APIError.
	created, err := ogen.CreatePipeline(ctx, &ogenclient.NewPipeline{Name: "invoices"})
	if err != nil {
		return err
	}
	pipe, ok := created.(*ogenclient.Pipeline)
	if !ok {
		return fmt.Errorf("create pipeline: %T", created)
	}
	fmt.Fprintf(w, "ogen: created %s\n", pipe.Name)

	srv.Fail("POST /pipelines/{id}/run", 1, neuracrafttest.Plugin(500, 8102, "PDF Export Plugin: invalid template.", false))
	callCtx, lastErr := neuracraft.WithLastError(ctx)
	res, err := ogen.StartRun(callCtx, ogenclient.StartRunReq{}, ogenclient.StartRunParams{ID: pipe.ID})
	if err != nil {
		return err
	}
	switch res := res.(type) {
	case *ogenclient.RunStarted:
		fmt.Fprintf(w, "ogen: run %s %s\n", res.RunID, res.Status)
	case *ogenclient.ErrorStatusCodeWithHeaders:
		fmt.Fprintf(w, "ogen: %d, %s\n", res.StatusCode, lastErr())
	}
	return nil
}
