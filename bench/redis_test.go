// This file holds the Redis of the lab's fleet rows: a redis-server
// started for one test on a free loopback port, without persistence.

package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisLog takes what go-redis logs in place of the standard logger: the
// "connection pool: failed to dial" lines of members whose Redis a test
// stopped, by design. It counts the lines and drops them; the tests'
// assertions, not these lines, report failures (TestMain prints the count
// with -v).
type redisLog struct{ lines atomic.Int64 }

// Printf implements go-redis's internal.Logging.
func (l *redisLog) Printf(context.Context, string, ...any) { l.lines.Add(1) }

// quietRedis is the logger TestMain gives go-redis.
var quietRedis = &redisLog{}

// startRedis starts a redis-server, killed at the end of t, and returns
// its address, or errNoRedis when redis-server is not installed. Call it
// from t's own goroutine.
func startRedis(t *testing.T) (string, error) {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errNoRedis
	}
	addr := freeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start(), "starting redis-server")
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	rdb := redisClient(addr)
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); rdb.Ping(context.Background()).Err() != nil; {
		require.False(t, time.Now().After(deadline), "redis-server on %s did not answer within 10 s", addr)
		time.Sleep(10 * time.Millisecond)
	}
	return addr, nil
}

// errNoRedis is startRedis's error when redis-server is not installed.
var errNoRedis = errors.New("redis-server is not installed: the fleet rows need a real Redis (Debian/Ubuntu: apt-get install -y redis-server)")

// redisClient is a go-redis client for the lab's Redis at addr, with
// short timeouts, as redisfleet advises.
func redisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
}
