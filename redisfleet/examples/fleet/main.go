// Command fleet shows three replicas of a service sharing NeuraCraft's
// cooldown through Redis: one of them meets a 429, and the other two hold
// their requests until the pause ends instead of drawing 429s of their
// own.
//
// It starts a fake NeuraCraft in-process (package neuracrafttest) and,
// unless REDIS_ADDR names a Redis to use, its own throwaway redis-server
// (which must be on PATH):
//
//	cd redisfleet && go run ./examples/fleet
//	REDIS_ADDR=127.0.0.1:6379 go run ./examples/fleet
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/neuracrafttest"
	"github.com/neuracraft/neuracraft-go/redisfleet"
	"github.com/redis/go-redis/v9"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func run(w io.Writer) error {
	out := &syncWriter{w: w} // the replicas print from their own goroutines
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		stop, a, err := startRedis()
		if err != nil {
			return err
		}
		defer stop()
		addr = a
	}

	api := neuracrafttest.NewServer()
	defer api.Close()
	api.Fail("GET /pipelines", 1, neuracrafttest.RateLimit("1")) // the next request: 429, Retry-After: 1

	// Each replica has its own Redis client, Fleet and Transport; in a real
	// service that is one of each per process.
	var clients []*http.Client
	for range 3 {
		rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		defer rdb.Close()
		fleet := redisfleet.New(rdb, redisfleet.Options{
			OnError: func(err error) { fmt.Fprintln(out, "  redis trouble (working alone meanwhile):", err) },
		})
		defer fleet.Close()
		clients = append(clients, &http.Client{Transport: &neuracraft.Transport{Coordinator: fleet}})
	}

	start := time.Now()
	since := func() string { return time.Since(start).Round(10 * time.Millisecond).String() }
	get := func(replica int) {
		req, err := http.NewRequest("GET", api.URL+"/pipelines", nil)
		if err != nil {
			panic(err)
		}
		req.Header.Set("X-API-Key", api.APIKey)
		resp, err := clients[replica].Do(req)
		if err != nil {
			fmt.Fprintf(out, "replica %d: failed at %s: %v\n", replica+1, since(), err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Fprintf(out, "replica %d: %s at %s\n", replica+1, resp.Status, since())
	}

	fmt.Fprintln(out, "replica 1 calls and meets a 429 with Retry-After: 1; replicas 2 and 3 call 100 ms later")
	var wg sync.WaitGroup
	wg.Go(func() { get(0) })
	time.Sleep(100 * time.Millisecond)
	for r := 1; r < 3; r++ {
		wg.Go(func() { get(r) })
	}
	wg.Wait()

	limited := 0
	for _, r := range api.Requests() {
		if r.Fault != "" {
			limited++
		}
	}
	fmt.Fprintf(out, "NeuraCraft saw %d requests, %d of them answered 429: the other replicas waited for the fleet's cooldown\n",
		len(api.Requests()), limited)
	return nil
}

// startRedis starts redis-server on a free loopback port, without
// persistence, and returns how to stop it and its address.
func startRedis() (stop func(), addr string, err error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("no redis-server on PATH (apt-get install redis-server), and REDIS_ADDR is not set")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "fleet-redis")
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return stop, addr, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("redis-server did not start: %w", err)
		}
	}
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
