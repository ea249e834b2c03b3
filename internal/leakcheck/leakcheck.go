// Package leakcheck finds what a test leaves behind: goroutines that are
// still running and network connections that are still open. It uses only
// the standard library.
//
// [Goroutines] compares the goroutines running at the end of a test with
// those running at its start, by identity (the runtime's goroutine ID),
// not by count: a goroutine that the test started and left running is
// found even when another one ended meanwhile and the count is the same.
// The check is process-wide, so a test that uses it must not run in
// parallel with other tests. [Conns] counts the connections a client
// dials, through its DialContext, that are not yet closed.
//
// go.uber.org/goleak does the same job with more options (ignoring known
// goroutines by their top function), but the main module's tests may
// depend on testify and go-cmp only, so this package keeps to the standard
// library.
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
	"maps"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

// Goroutines records which goroutines are running and registers a cleanup
// that fails t, printing the stack of each goroutine started since, unless
// all of those have ended within [Timeout]. Call it before anything that
// registers its own cleanup (servers, clients), so that its check runs
// after theirs.
func Goroutines(t TB) {
	t.Helper()
	base := goroutines()
	t.Cleanup(func() { check(t, base, Timeout) })
}

// check fails t unless every goroutine not in base ends within timeout.
func check(t TB, base map[uint64]string, timeout time.Duration) {
	if left, ok := settle(base, timeout); !ok {
		ids := slices.Sorted(maps.Keys(left))
		stacks := make([]string, len(ids))
		for i, id := range ids {
			stacks[i] = left[id]
		}
		t.Errorf("leakcheck: %d goroutine(s) started during the test still running:\n\n%s",
			len(left), strings.Join(stacks, "\n\n"))
	}
}

// settle waits up to timeout for every goroutine not in base to end, and
// returns those last seen running.
func settle(base map[uint64]string, timeout time.Duration) (left map[uint64]string, ok bool) {
	ok = Until(timeout, func() bool {
		left = goroutines()
		maps.DeleteFunc(left, func(id uint64, _ string) bool { _, old := base[id]; return old })
		return len(left) == 0
	})
	return left, ok
}

// goroutines returns the running goroutines' stacks, by goroutine ID.
// The runtime never gives an ID to two goroutines of one process.
func goroutines() map[uint64]string {
	all := make(map[uint64]string)
	for stack := range strings.SplitSeq(strings.TrimSpace(Stacks()), "\n\n") {
		// Each stack begins "goroutine 42 [chan receive]:".
		rest, ok := strings.CutPrefix(stack, "goroutine ")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, " ")
		if id, err := strconv.ParseUint(num, 10, 64); err == nil {
			all[id] = stack
		}
	}
	return all
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
