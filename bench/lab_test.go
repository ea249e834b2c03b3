//go:build !race

// This file holds the pacing lab of issue 19: the SDK and
// go-retryablehttp against a real nginx limit_req in front of
// neuracrafttest, with the workload, and the targets asserted on
// the medians of labReps runs. The lab measures time, which the race
// detector slows too much, so the file is built without it only:
// go test -race leaves the lab out, and .ci/run runs it on its own.

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	neuracraft "github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/neuracraft/neuracraft-go/redisfleet"
)

// The workload of the lab: labReplicas processes of labCallers callers,
// each caller making labCalls calls one after the other, every call with
// a labDeadline, against nginx admitting labRate requests a second.
const (
	labReplicas = 8
	labCallers  = 10
	labCalls    = 2
	labDeadline = 30 * time.Second
	labRate     = 50
	labBurst    = 20 // the burst of the burst=20 rows

	// labLate is when the first wave ends: a 429 answered later is
	// "late", one a client could have avoided.
	labLate = 100 * time.Millisecond
)

var (
	labReps         = flag.Int("lab.reps", 3, "runs of each asserted row of the nginx lab; the targets apply to their medians")
	labReportedReps = flag.Int("lab.reported-reps", 1, "runs of each row of the nginx lab that is reported, not asserted")
)

// A labMode is how the callers are organised, and by which client.
type labMode int

const (
	oneProcess    labMode = iota // one neuracraft.Transport for every caller
	replicas                     // one neuracraft.Transport per replica, no Coordinator
	withFleet                    // one neuracraft.Transport per replica, redisfleet as Coordinator
	retryableHTTP                // go-retryablehttp with its defaults, for reference
)

func (m labMode) String() string {
	return [...]string{"one process", "8 replicas, no Coordinator", "8 replicas with redisfleet", "go-retryablehttp, for reference"}[m]
}

// labResult is one run of the workload.
type labResult struct {
	ok, late429, all429 int
	http1               int // answers over HTTP/1.x
	wall                time.Duration
}

// labCount counts the 429s that the clients of one run receive, and
// which of them are late.
type labCount struct {
	start time.Time

	mu          sync.Mutex
	late, total int
	http1       int // answers over HTTP/1.x
}

// counting is the Base (or go-retryablehttp's transport) of one replica:
// it sends through the replica's own pool and counts the 429s.
type counting struct {
	pool  *http.Transport
	count *labCount
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.pool.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	late := time.Since(c.count.start) > labLate
	c.count.mu.Lock()
	defer c.count.mu.Unlock()
	if resp.ProtoMajor < 2 {
		c.count.http1++
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		c.count.total++
		if late {
			c.count.late++
		}
	}
	return resp, nil
}

// labPool is the connection pool of one replica: a clone of
// http.DefaultTransport that keeps enough idle connections for its
// callers, so that connection set-up is not what the lab measures, and
// trusts roots (nil: the system's). Like http.DefaultTransport, it speaks
// HTTP/2 to an HTTPS server that offers it.
func labPool(roots *x509.CertPool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = labReplicas * labCallers
	if roots != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return t
}

// runLab runs the workload once against url with the API key key and
// returns what the callers saw; redisAddr is the Redis of the withFleet
// mode, roots what the clients trust over HTTPS.
func runLab(t *testing.T, url, key string, mode labMode, redisAddr string, roots *x509.CertPool) labResult {
	count := &labCount{}
	// A fleet of its own, whatever earlier runs left in Redis.
	prefix := fmt.Sprintf("lab%d", time.Now().UnixNano())
	var do []func(ctx context.Context) error // what a caller of each replica calls
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	newReq := func(ctx context.Context) *http.Request {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/pipelines", nil)
		require.NoError(t, err)
		req.Header.Set("X-API-Key", key)
		return req
	}
	base := func() counting {
		pool := labPool(roots)
		closers = append(closers, pool.CloseIdleConnections)
		warmUp(t, pool, url)
		return counting{pool: pool, count: count}
	}
	through := func(rt http.RoundTripper) func(ctx context.Context) error {
		c := &http.Client{Transport: rt}
		return func(ctx context.Context) error {
			resp, err := c.Do(newReq(ctx))
			if err != nil {
				return err
			}
			return drain(resp)
		}
	}
	switch mode {
	case oneProcess:
		shared := through(&neuracraft.Transport{Base: base()})
		for range labReplicas {
			do = append(do, shared)
		}
	case replicas, withFleet:
		for range labReplicas {
			tr := &neuracraft.Transport{Base: base()}
			if mode == withFleet {
				rdb := redisClient(redisAddr)
				warmRedis(t, rdb, labCallers)
				f := redisfleet.New(rdb, redisfleet.Options{Prefix: prefix})
				closers = append(closers, func() { f.Close(); rdb.Close() })
				tr.Coordinator = f
			}
			do = append(do, through(tr))
		}
	case retryableHTTP:
		c := retryablehttp.NewClient()
		c.Logger = nil
		c.HTTPClient = &http.Client{Transport: base()}
		shared := func(ctx context.Context) error {
			req, err := retryablehttp.FromRequest(newReq(ctx))
			if err != nil {
				return err
			}
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			if resp.StatusCode >= 400 { // what it returns when its retries run out
				_ = drain(resp)
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return drain(resp)
		}
		for range labReplicas {
			do = append(do, shared)
		}
	}

	var (
		mu  sync.Mutex
		res labResult
		wg  sync.WaitGroup
	)
	begin := make(chan struct{})
	for _, call := range do {
		for range labCallers {
			wg.Go(func() {
				<-begin
				for range labCalls {
					ctx, cancel := context.WithTimeout(context.Background(), labDeadline)
					err := call(ctx)
					cancel()
					if err == nil {
						mu.Lock()
						res.ok++
						mu.Unlock()
					}
				}
			})
		}
	}
	count.start = time.Now()
	close(begin)
	wg.Wait()
	res.wall = time.Since(count.start)
	count.mu.Lock()
	res.late429, res.all429, res.http1 = count.late, count.total, count.http1
	count.mu.Unlock()
	return res
}

// warmUp opens a connection of pool to the lab's nginx (url) before the
// run, as a replica that has been running for a while has one: over
// HTTP/2 every caller of the replica shares it, and without it the first
// wave waits for a TLS handshake and comes later than labLate. It asks
// for /warm, which nginx answers itself, outside the limit.
func warmUp(t *testing.T, pool *http.Transport, url string) {
	req, err := http.NewRequest(http.MethodGet, url+"/warm", nil)
	require.NoError(t, err)
	resp, err := pool.RoundTrip(req)
	require.NoError(t, err, "warming a connection to nginx up")
	require.NoError(t, drain(resp))
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "nginx's answer to /warm")
}

// warmRedis opens n connections in rdb's pool, as a replica that has run
// a while holds them (docs/fleet.md advises go-redis's MinIdleConns for
// it; redisfleet's lab warms its members the same way), so that the
// first wave's Reserves, as many at once as a replica has callers, do
// not dial Redis. Without it, on a busy 2-core machine, some of them dial
// for longer than OpTimeout (50 ms), and their requests go on through
// their own Transport's queue, uncoordinated, and draw late 429s: one
// strict fleet run in about seven took 7.4 to 15.6 s on 2026-12-07.
func warmRedis(t *testing.T, rdb *redis.Client, n int) {
	ctx := context.Background()
	conns := make([]*redis.Conn, n)
	for i := range conns {
		conns[i] = rdb.Conn() // a connection of its own, taken from the pool
		require.NoError(t, conns[i].Ping(ctx).Err(), "warming a connection to Redis up")
	}
	for _, c := range conns {
		require.NoError(t, c.Close()) // back to the pool, idle
	}
}

// drain reads the body of resp to its end and closes it.
func drain(resp *http.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return err
}

// labIdeal is the wall time of the workload at the limit: every call
// but those nginx admits at once, at labRate a second.
func labIdeal(l nginxLimit) time.Duration {
	calls := labReplicas * labCallers * labCalls
	return time.Duration(calls-1-l.burst) * time.Second / time.Duration(l.rate)
}

// labTarget is a row of issue 19's table of targets: the medians must
// have every call succeed, at most maxLate late 429s (-1: no bound) and a
// wall time of at most maxRatio times the ideal. reported rows are
// measured and printed but not asserted.
type labTarget struct {
	limit    nginxLimit
	mode     labMode
	maxLate  int
	maxRatio float64
	reported string // why the row is only reported, "" when asserted
}

// TestNginxLab runs issue 19's workload through the SDK and
// go-retryablehttp against a real nginx limit_req (50 r/s, 429 with
// Retry-After: 1; strict, then burst=20 nodelay) in front of
// neuracrafttest, and asserts the targets on the medians of
// -lab.reps runs for the SDK's rows, with and without redisfleet;
// go-retryablehttp's row is reported. Then the same over HTTPS with
// HTTP/2 ("h2"), as services reach the API: the targets of one process
// and of the fleet are asserted, the replicas without a Coordinator are
// reported (their targets are asserted over HTTP/1.1), and every answer
// must have come over HTTP/2.
// It prints its table with -v:
//
//	cd bench && go test -run TestNginxLab -v .
func TestNginxLab(t *testing.T) {
	api := neuracrafttest.NewServer()
	defer api.Close()
	upstream := strings.TrimSuffix(strings.TrimPrefix(api.URL, "http://"), "/v1")
	strict, burst := nginxLimit{rate: labRate}, nginxLimit{rate: labRate, burst: labBurst}
	strictH2, burstH2 := nginxLimit{rate: labRate, h2: true}, nginxLimit{rate: labRate, burst: labBurst, h2: true}
	cert := newLabCert(t)
	// The fleet rows share one redis-server, for the whole test; without
	// one they are skipped, except in CI (CI=true), where that fails.
	redisAddr, redisErr := startRedis(t)
	if redisErr != nil {
		require.NotEqual(t, "true", os.Getenv("CI"), redisErr.Error())
	}
	rows := []labTarget{
		{limit: strict, mode: oneProcess, maxLate: 5, maxRatio: 2.0},
		{limit: strict, mode: replicas, maxLate: -1, maxRatio: 6},
		{limit: strict, mode: withFleet, maxLate: 5, maxRatio: 2.2},
		{limit: strict, mode: retryableHTTP, maxLate: -1, reported: "a reference"},
		{limit: burst, mode: oneProcess, maxLate: 5, maxRatio: 1.4},
		{limit: burst, mode: replicas, maxLate: -1, maxRatio: 1.8},
		{limit: burst, mode: withFleet, maxLate: 5, maxRatio: 1.4},
		{limit: strictH2, mode: oneProcess, maxLate: 5, maxRatio: 2.0},
		{limit: strictH2, mode: replicas, maxLate: -1, reported: "asserted over HTTP/1.1"},
		{limit: strictH2, mode: withFleet, maxLate: 5, maxRatio: 2.2},
		{limit: burstH2, mode: oneProcess, maxLate: 5, maxRatio: 1.4},
		{limit: burstH2, mode: replicas, maxLate: -1, reported: "asserted over HTTP/1.1"},
		{limit: burstH2, mode: withFleet, maxLate: 5, maxRatio: 1.4},
	}
	var table []string
	for _, row := range rows {
		name := row.limit.String() + "/" + row.mode.String()
		t.Run(name, func(t *testing.T) {
			if row.mode == withFleet && redisErr != nil {
				t.Skip(redisErr.Error())
			}
			ideal := labIdeal(row.limit)
			var oks, lates, walls []float64
			var runs []string
			reps := *labReps
			if row.reported != "" {
				reps = *labReportedReps
			}
			for range reps {
				url := startNginx(t, upstream, row.limit, cert)
				r := runLab(t, url, api.APIKey, row.mode, redisAddr, cert.roots)
				if row.limit.h2 {
					assert.Zero(t, r.http1, "answers over HTTP/1.x from an nginx that serves HTTP/2")
				}
				oks = append(oks, float64(r.ok))
				lates = append(lates, float64(r.late429))
				walls = append(walls, r.wall.Seconds())
				runs = append(runs, fmt.Sprintf("%d ok, %d late 429s (%d in all), %.2f s", r.ok, r.late429, r.all429, r.wall.Seconds()))
			}
			ok, late, wall := median(oks), median(lates), median(walls)
			line := fmt.Sprintf("| %s | %s | %.0f of %d | %.0f | %.2f s (%.2fx) | %.2f s |", row.limit, row.mode, ok,
				labReplicas*labCallers*labCalls, late, wall, wall/ideal.Seconds(), ideal.Seconds())
			t.Logf("%s runs: %s", line, strings.Join(runs, "; "))
			table = append(table, line)
			if row.reported != "" {
				t.Logf("reported, not asserted (%s)", row.reported)
				return
			}
			assert.Equal(t, float64(labReplicas*labCallers*labCalls), ok, "median of the calls that succeeded")
			if row.maxLate >= 0 {
				assert.LessOrEqual(t, late, float64(row.maxLate), "median of the late 429s")
			}
			assert.LessOrEqual(t, wall/ideal.Seconds(), row.maxRatio, "median wall time over the ideal (%v)", ideal)
		})
	}
	t.Logf("nginx limit_req at %d r/s, %d replicas x %d callers x %d calls, medians of %d runs (%d for the reported rows):\n"+
		"| limiter | mode | ok | late 429s | wall | ideal |\n|---|---|---|---|---|---|\n%s",
		labRate, labReplicas, labCallers, labCalls, *labReps, *labReportedReps, strings.Join(table, "\n"))
}
