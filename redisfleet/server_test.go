package redisfleet

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisServer is a throwaway redis-server on a loopback port, without
// persistence, in a temporary directory; it can be stopped and started
// again on the same port.
type redisServer struct {
	t    testing.TB
	path string
	port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startRedis starts a redis-server for t, stopped at the end of the test.
// Without redis-server on PATH the test is skipped, except in CI
// (CI=true), where that is a failure.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not on PATH: the fleet tests need a real Redis " +
			"(Debian/Ubuntu: apt-get install -y redis-server)"
		require.NotEqual(t, "true", os.Getenv("CI"), msg) // in CI, a failure rather than a skip
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &redisServer{t: t, path: path, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and waits until it answers PING.
func (s *redisServer) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	require.NoError(s.t, cmd.Start(), "starting redis-server")
	s.cmd = cmd
	rdb := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		require.False(s.t, time.Now().After(deadline), "redis-server on %s did not start: %v", s.addr(), err)
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL: like a crash) and waits for it.
func (s *redisServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// freeze stops the server's process (SIGSTOP) without closing its
// connections: a Redis that does not answer. thaw resumes it.
func (s *redisServer) freeze() { s.signal("STOP") }
func (s *redisServer) thaw()   { s.signal("CONT") }

func (s *redisServer) signal(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NoError(s.t, exec.Command("kill", "-"+name, strconv.Itoa(s.cmd.Process.Pid)).Run(), "kill -%s redis-server", name)
}

// client returns a go-redis client for s with go-redis's defaults except
// shorter timeouts, so that commands abandoned by a Fleet end soon.
func (s *redisServer) client(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.addr(), DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
