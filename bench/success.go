// This file holds scenario 1, the success path: what each client costs
// per request when nothing fails. The same code backs BenchmarkSuccess in
// bench_test.go.

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// okBody is the ~100-byte JSON that the success server answers.
var okBody = []byte(`{"id":"pipe_0123456789","object":"pipeline","status":"ready","created":1767225600,"version":3}` + "\n")

// successOp is one request shape of scenario 1.
type successOp struct {
	name    string
	method  string
	payload []byte
}

var successOps = []successOp{
	{name: "get", method: http.MethodGet},
	{name: "post64k", method: http.MethodPost, payload: make([]byte, 64<<10)},
}

// newSuccessServer answers every request 200 with okBody, after reading
// the request body to its end.
func newSuccessServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(okBody)
	}))
}

// serverEnv, set to 1, makes this program (or test binary) serve as the
// success server of a parent process; see startSuccessServer.
const serverEnv = "NEURACRAFT_BENCH_SUCCESS_SERVER"

// serveIfChild serves as the success server and exits when this process
// was started by startSuccessServer. It prints the server's URL on
// stdout and serves until its stdin closes (the parent is done or dead).
func serveIfChild() {
	if os.Getenv(serverEnv) != "1" {
		return
	}
	srv := newSuccessServer()
	fmt.Println(srv.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}

// startSuccessServer starts the success server: in a child process (this
// same executable) unless inProcess, so that the server's allocations and
// garbage are not counted as the client's B/op and allocs/op. stop ends
// it.
func startSuccessServer(inProcess bool) (url string, stop func(), err error) {
	if inProcess {
		srv := newSuccessServer()
		return srv.URL, srv.Close, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("starting the success server: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// runSuccess is the benchmark body: one op per iteration, through c. A
// failed call stops the benchmark; its error is also stored in *failure
// when failure is not nil, because testing.Benchmark does not print it.
func runSuccess(b *testing.B, c *client, op successOp, url string, failure *error) {
	b.ReportAllocs()
	cl := &call{method: op.method, url: url + "/v1/pipelines/pipe_0123456789", payload: op.payload}
	if op.payload != nil {
		b.SetBytes(int64(len(op.payload)))
	}
	ctx := context.Background()
	for b.Loop() {
		status, err := c.do(ctx, cl)
		if !ok(status, err) {
			ferr := fmt.Errorf("%s/%s: status %d, error %v", c.kind, op.name, status, err)
			if failure != nil {
				*failure = ferr
			}
			b.Fatal(ferr)
		}
	}
}

// scenarioSuccess runs every op for every client reps times, interleaved,
// with testing.Benchmark, and adds the medians to t: ns/op, the paired
// ratio of ns/op to bare, B/op and allocs/op.
func scenarioSuccess(t *table, cfg *config) error {
	url, stop, err := startSuccessServer(cfg.inprocServer)
	if err != nil {
		return err
	}
	defer stop()
	// perOp[op] holds ns/op, B/op and allocs/op.
	perOp := make(map[string]*[3]series)
	for _, op := range successOps {
		perOp[op.name] = new([3]series)
	}
	for rep := range cfg.successReps {
		for _, op := range successOps {
			for _, k := range order(rep) {
				c := newClient(k)
				var failure error
				r := testing.Benchmark(func(b *testing.B) { runSuccess(b, c, op, url, &failure) })
				c.close()
				if failure != nil || r.N == 0 {
					return fmt.Errorf("scenario 1: benchmark failed: %v", failure)
				}
				s := perOp[op.name]
				s[0].add(k, float64(r.T.Nanoseconds())/float64(r.N))
				// The figures go test -benchmem prints: whole bytes and
				// allocations per op, rounded down.
				s[1].add(k, float64(r.AllocedBytesPerOp()))
				s[2].add(k, float64(r.AllocsPerOp()))
			}
		}
		for _, op := range successOps {
			var line strings.Builder
			for _, k := range kinds {
				fmt.Fprintf(&line, " %s %.0f", k, perOp[op.name][0][k][rep])
			}
			cfg.progress("scenario 1: repetition %d/%d, %s ns/op:%s", rep+1, cfg.successReps, op.name, line.String())
		}
	}
	for _, op := range successOps {
		s := perOp[op.name]
		name := "1. Success " + op.name
		t.add(name, "ns/op", "%.0f", &s[0])
		t.addPaired(name, "ns/op ÷ bare's, paired (interquartile range)", &s[0])
		t.add(name, "B/op", "%.0f", &s[1])
		t.add(name, "allocs/op", "%.0f", &s[2])
	}
	return nil
}
