// Package leakcheck finds what a test leaves behind: goroutines that are
// still running and network connections that are still open. It uses only
// the standard library.
//
// [Goroutines] compares the process's goroutine count at the end of a test
// with the count at its start; the count is process-wide, so a test that
// uses it must not run in parallel with other tests. [Conns] counts the
// connections a client dials, through its DialContext, that are not yet
// closed.
//
//	func TestSomething(t *testing.T) {
//		leakcheck.Goroutines(t) // first, so that its check runs last
//		conns := &leakcheck.Conns{}
//		client := &http.Client{Transport: &http.Transport{DialContext: conns.DialContext}}
//		...
//	}
package leakcheck

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Timeout is how long [Goroutines] and [Until] wait for a condition, and
// Poll how often they check it.
const (
	Timeout = 2 * time.Second
	Poll    = 10 * time.Millisecond
)

// TB is the part of testing.TB that [Goroutines] uses.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
}

// Goroutines records how many goroutines are running and registers a
// cleanup that fails t, printing the stack of every goroutine, unless the
// count is back to at most that number within [Timeout]. Call it before
// anything that registers its own cleanup (servers, clients), so that its
// check runs after theirs.
func Goroutines(t TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		if n, ok := settle(base, Timeout); !ok {
			t.Errorf("leakcheck: %d goroutines still running, %d at the start of the test:\n%s", n, base, Stacks())
		}
	})
}

// settle waits up to timeout for the goroutine count to fall to at most
// base, and returns the last count seen.
func settle(base int, timeout time.Duration) (n int, ok bool) {
	ok = Until(timeout, func() bool {
		n = runtime.NumGoroutine()
		return n <= base
	})
	return n, ok
}

// Stacks returns the stacks of all goroutines, as a panic prints them.
func Stacks() string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Until calls cond every [Poll] until it returns true or timeout has
// passed, and reports whether it returned true. cond is called at least
// once.
func Until(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); ; {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		runtime.Gosched()
		time.Sleep(Poll)
	}
}

// Conns counts the connections made through its DialContext: how many
// were dialed, how many are still open and how many bytes were read from
// them. Set its DialContext as an http.Transport's. The zero value dials
// with a zero net.Dialer and is ready to use. It is safe for concurrent
// use.
type Conns struct {
	// Dialer dials the connections.
	Dialer net.Dialer

	dialed, open, read atomic.Int64
}

// DialContext dials like net.Dialer.DialContext and counts the connection
// as open until it is first closed.
func (c *Conns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.Dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.dialed.Add(1)
	c.open.Add(1)
	return &countedConn{Conn: conn, owner: c}, nil
}

// Dialed returns how many connections were dialed.
func (c *Conns) Dialed() int64 { return c.dialed.Load() }

// Open returns how many dialed connections are not closed yet.
func (c *Conns) Open() int64 { return c.open.Load() }

// BytesRead returns how many bytes were read from all the connections.
func (c *Conns) BytesRead() int64 { return c.read.Load() }

// countedConn is a connection that Conns counts.
type countedConn struct {
	net.Conn
	owner *Conns
	once  sync.Once
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.owner.read.Add(int64(n))
	return n, err
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.owner.open.Add(-1) })
	return c.Conn.Close()
}
