// This file starts the real Redis the tests run against: one
// redis-server, or a cluster of three masters, on free loopback ports.

package redisfleet

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// A redisTarget is what members connect to: one redis-server, a cluster,
// or a proxy in front of a server.
type redisTarget interface {
	// client returns a go-redis client for the target, built the way
	// docs/fleet.md recommends (ContextTimeoutEnabled, go-redis's default
	// timeouts), closed at the end of t.
	client(t testing.TB) redis.UniversalClient
}

// topologies are the targets the tests that must hold on every topology
// run on, each started for one test.
var topologies = []struct {
	name  string
	start func(t testing.TB) redisTarget
}{
	{"node", func(t testing.TB) redisTarget { return startRedis(t) }},
	{"cluster", func(t testing.TB) redisTarget { return startCluster(t) }},
}

// redisServer is a throwaway redis-server on a loopback port, without
// persistence, in a temporary directory; it can be stopped and started
// again on the same port.
type redisServer struct {
	t    testing.TB
	path string
	port int
	dir  string
	args []string // more arguments of redis-server

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startRedis starts a redis-server for t, stopped at the end of the test.
// Without redis-server on PATH the test is skipped, except in CI
// (CI=true), where that is a failure.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	s := newRedis(t)
	s.start()
	return s
}

// newRedis prepares a redis-server for t on a free port, stopped at the
// end of the test, without starting it.
func newRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	s := &redisServer{t: t, path: needTool(t, "redis-server", "redis-server"), port: freePort(t), dir: t.TempDir(), args: args}
	t.Cleanup(s.stop)
	return s
}

// needTool returns the path of the program name, which Debian's package
// pkg installs. Without it the test is skipped, except in CI (CI=true),
// where that is a failure.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not on PATH: the fleet tests need a real Redis " +
			"(Debian/Ubuntu: apt-get install -y " + pkg + ")"
		require.NotEqual(t, "true", os.Getenv("CI"), msg) // in CI, a failure rather than a skip
		t.Skip(msg)
	}
	return path
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and waits until it answers PING.
func (s *redisServer) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.path, append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir}, s.args...)...)
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

func (s *redisServer) client(t testing.TB) redis.UniversalClient { return clientTo(t, s.addr()) }

// clientTo returns a client to the redis-server at addr, configured as
// docs/fleet.md recommends, closed at the end of t.
func clientTo(t testing.TB, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// redisCluster is a Redis Cluster of three masters, without replicas,
// on loopback ports.
type redisCluster struct {
	nodes []*redisServer
}

// startCluster starts a cluster for t: three redis-servers with
// cluster-enabled, joined by redis-cli --cluster create, and waits until
// every node reports the cluster ok. It needs redis-cli (Debian's
// redis-tools) as well as redis-server.
func startCluster(t testing.TB) *redisCluster {
	t.Helper()
	cli := needTool(t, "redis-cli", "redis-tools")
	c := &redisCluster{}
	args := []string{"create"}
	for range 3 {
		s := newRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000", "--cluster-port", strconv.Itoa(freePort(t)))
		s.start()
		c.nodes = append(c.nodes, s)
		args = append(args, s.addr())
	}
	out, err := exec.Command(cli, append([]string{"--cluster"}, append(args, "--cluster-replicas", "0", "--cluster-yes")...)...).CombinedOutput()
	require.NoError(t, err, "redis-cli --cluster create: %s", out)
	for _, s := range c.nodes {
		rdb := redis.NewClient(&redis.Options{Addr: s.addr()})
		_, ok := waitFor(20*time.Second, func() bool {
			info, err := rdb.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		rdb.Close()
		require.True(t, ok, "the cluster did not become ok within 20s")
	}
	return c
}

func (c *redisCluster) client(t testing.TB) redis.UniversalClient {
	var addrs []string
	for _, s := range c.nodes {
		addrs = append(addrs, s.addr())
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
