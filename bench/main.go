// Command bench compares neuracraft-go's retrying transport with a bare
// http.Transport and with the retrying clients users pick instead
// (go-retryablehttp, failsafe-go's failsafehttp, resty, and a minimal
// RoundTripper on cenkalti/backoff), each with its documented defaults, on
// loopback test servers, and prints one markdown table of medians.
//
//	cd bench && go run .          # the full run, several minutes
//	cd bench && go run . -quick   # a smoke run, under a minute
//
// See README.md for what each scenario measures.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// config holds the run's parameters; see the flags in main.
type config struct {
	quick       bool
	successReps int
	benchtime   time.Duration
	// inprocServer runs scenario 1's server in this process, where its
	// allocations count as the client's.
	inprocServer bool
	reps         int // scenarios 2 and 3
	fastReps     int // scenarios 4 and 5
	only         map[int]bool
	verbose      bool

	callTimeout time.Duration

	outageCalls, outageConc, inflightCalls int
	seqCycles, seqCalls                    int
	seqTimeout                             time.Duration

	stormCallers, stormCalls int
	stormRate                float64
	stormCap                 time.Duration

	uploadSize int64
	deadline   time.Duration

	log io.Writer
}

// progress reports on stderr how far the run is, when verbose.
func (c *config) progress(format string, args ...any) {
	if c.verbose {
		fmt.Fprintf(c.log, "  "+format+"\n", args...)
	}
}

func (c *config) runs(scenario int) bool { return len(c.only) == 0 || c.only[scenario] }

func main() {
	serveIfChild()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if err := run(cfg, out); err != nil {
		out.Flush()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg := &config{log: os.Stderr}
	fs.BoolVar(&cfg.quick, "quick", false, "a smoke run (< 1 min): fewer repetitions, shorter deadlines, smaller loads")
	fs.IntVar(&cfg.successReps, "success-reps", 20, "repetitions of each scenario 1 benchmark (-quick: 3)")
	fs.DurationVar(&cfg.benchtime, "benchtime", 100*time.Millisecond, "time per scenario 1 benchmark")
	fs.BoolVar(&cfg.inprocServer, "inproc-server", false, "scenario 1: run the server in this process (its allocations then count in B/op and allocs/op)")
	fs.IntVar(&cfg.reps, "reps", 3, "repetitions of scenarios 2 and 3; scenarios 4 and 5 run 2*reps+1 times (-quick: 1)")
	only := fs.String("only", "", "comma-separated scenarios to run, e.g. 1,4 (default all)")
	fs.BoolVar(&cfg.verbose, "v", true, "report progress on stderr")
	fs.DurationVar(&cfg.callTimeout, "call-timeout", 30*time.Second, "deadline of each call in scenarios 2a, 3 and 4 (-quick: 5s)")
	fs.IntVar(&cfg.outageCalls, "outage-calls", 200, "scenario 2: calls during the outage")
	fs.IntVar(&cfg.outageConc, "outage-conc", 200, "scenario 2: goroutines making them, for every client")
	fs.IntVar(&cfg.inflightCalls, "inflight-calls", 50, "scenario 2: calls in flight when the server recovers")
	fs.IntVar(&cfg.seqCycles, "seq-cycles", 5, "scenario 2b: outages, one call at a time (-quick: 2)")
	fs.IntVar(&cfg.seqCalls, "seq-calls", 3, "scenario 2b: failing calls per outage before the recovering one")
	fs.DurationVar(&cfg.seqTimeout, "seq-timeout", 2*time.Second, "scenario 2b: deadline of each call")
	fs.IntVar(&cfg.stormCallers, "storm-callers", 100, "scenario 3: concurrent callers")
	fs.IntVar(&cfg.stormCalls, "storm-calls", 5, "scenario 3: calls per caller (-quick: 2)")
	fs.Float64Var(&cfg.stormRate, "storm-rate", 50, "scenario 3: the server's limit, requests/s (also its burst)")
	fs.DurationVar(&cfg.stormCap, "storm-cap", 90*time.Second, "scenario 3: cap on each client's run")
	upload := fs.Int64("upload-mib", 100, "scenario 4: body size in MiB (-quick: 16)")
	fs.DurationVar(&cfg.deadline, "deadline", time.Second, "scenario 5: the caller's deadline")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.fastReps = 2*cfg.reps + 1
	if cfg.quick {
		quick := []struct {
			flag string
			set  func()
		}{
			{"success-reps", func() { cfg.successReps = 3 }},
			{"reps", func() { cfg.reps, cfg.fastReps = 1, 1 }},
			{"call-timeout", func() { cfg.callTimeout = 5 * time.Second }},
			{"seq-cycles", func() { cfg.seqCycles = 2 }},
			{"storm-calls", func() { cfg.stormCalls = 2 }},
			{"upload-mib", func() { *upload = 16 }},
		}
		for _, q := range quick {
			if !set[q.flag] {
				q.set()
			}
		}
	}
	cfg.uploadSize = *upload << 20
	if *only != "" {
		cfg.only = map[int]bool{}
		for f := range strings.SplitSeq(*only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 5 {
				return nil, fmt.Errorf("-only: %q is not a scenario (1-5)", f)
			}
			cfg.only[n] = true
		}
	}
	if cfg.successReps < 1 || cfg.reps < 1 || cfg.outageConc < 1 || cfg.stormCallers < 1 ||
		cfg.outageCalls < 1 || cfg.inflightCalls < 1 || cfg.seqCycles < 1 || cfg.seqCalls < 1 {
		return nil, fmt.Errorf("repetitions and concurrency must be positive")
	}
	// testing.Benchmark reads its run time from the testing package's
	// flags, which exist only after testing.Init.
	testing.Init()
	if err := flag.CommandLine.Set("test.benchtime", cfg.benchtime.String()); err != nil {
		return nil, err
	}
	return cfg, nil
}

func run(cfg *config, out io.Writer) error {
	start := time.Now()
	writeHeader(out, cfg)
	var t table
	if cfg.runs(1) {
		fmt.Fprintln(cfg.log, "scenario 1: success path")
		if err := scenarioSuccess(&t, cfg); err != nil {
			return err
		}
	}
	if cfg.runs(2) {
		fmt.Fprintln(cfg.log, "scenario 2: outage")
		scenarioOutage(&t, cfg)
	}
	if cfg.runs(3) {
		fmt.Fprintln(cfg.log, "scenario 3: rate-limit storm")
		scenarioStorm(&t, cfg)
	}
	if cfg.runs(4) {
		fmt.Fprintln(cfg.log, "scenario 4: large upload")
		if err := scenarioUpload(&t, cfg); err != nil {
			return err
		}
	}
	if cfg.runs(5) {
		fmt.Fprintln(cfg.log, "scenario 5: deadline")
		scenarioDeadline(&t, cfg)
	}
	t.write(out)
	fmt.Fprintln(out, "\nMedians over the repetitions. Paired ratio: the median (and interquartile range) of each repetition's "+
		"ns/op divided by bare's in the same repetition. —: not applicable, or it never happened.")
	fmt.Fprintf(out, "\nTotal run time: %s.\n", time.Since(start).Round(time.Second))
	return nil
}

func writeHeader(w io.Writer, cfg *config) {
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "## neuracraft-go and the clients users pick instead (%s run, %s)\n\n",
		mode, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- Machine: %s/%s, %s, NumCPU %d, GOMAXPROCS %d\n",
		runtime.GOOS, runtime.GOARCH, cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "- Go: %s; %s\n", runtime.Version(), depVersions())
	fmt.Fprintf(w, "- Repetitions (interleaved, round robin): scenario 1 %d × %s per benchmark; scenarios 2-3 %d; scenarios 4-5 %d\n",
		cfg.successReps, cfg.benchtime, cfg.reps, cfg.fastReps)
	fmt.Fprintf(w, "- Call deadlines: %s (scenarios 2a, 3, 4), %s (2b), %s (5)\n\n", cfg.callTimeout, cfg.seqTimeout, cfg.deadline)
}

// cpuModel is the "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

// depVersions names the compared modules' versions.
func depVersions() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "module versions unknown"
	}
	names := map[string]string{
		"github.com/hashicorp/go-retryablehttp": "go-retryablehttp",
		"github.com/failsafe-go/failsafe-go":    "failsafe-go",
		"github.com/go-resty/resty/v2":          "resty",
		"github.com/cenkalti/backoff/v5":        "cenkalti/backoff",
		"golang.org/x/time":                     "x/time (server limiter)",
	}
	var parts []string
	for _, m := range bi.Deps {
		if name, ok := names[m.Path]; ok {
			parts = append(parts, name+" "+m.Version)
		}
		if m.Path == "github.com/neuracraft/neuracraft-go" {
			v := m.Version
			if m.Replace != nil {
				v += " => " + m.Replace.Path + " (this checkout)"
			}
			parts = append(parts, "neuracraft-go "+v)
		}
	}
	return strings.Join(parts, "; ")
}
