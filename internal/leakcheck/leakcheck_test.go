// Tests of the goroutine and connection counting.

package leakcheck

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeTB records what Goroutines does with a test.
type fakeTB struct {
	cleanups []func()
	errors   []string
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(s string, a ...any) { f.errors = append(f.errors, fmt.Sprintf(s, a...)) }

func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestGoroutinesPassesWhenAllEnd(t *testing.T) {
	var f fakeTB
	Goroutines(&f)
	done := make(chan struct{})
	go func() { <-done }()
	close(done) // the goroutine ends soon; the check waits for it
	f.runCleanups()
	if len(f.errors) != 0 {
		t.Errorf("Goroutines reported a leak when there was none: %v", f.errors)
	}
}

func TestGoroutinesReportsALeak(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	base := goroutines()
	go leaky(stop)
	left, ok := settle(base, 50*time.Millisecond)
	if ok || len(left) != 1 {
		t.Errorf("settle = %d goroutines, %v with one left running; want 1, false", len(left), ok)
	}
	if s := Stacks(); !strings.Contains(s, "leakcheck.leaky") {
		t.Errorf("Stacks does not show the leaked goroutine:\n%s", s)
	}
}

func leaky(stop chan struct{}) { <-stop }

func TestUntil(t *testing.T) {
	calls := 0
	if !Until(time.Second, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Errorf("Until stopped after %d calls; want true after 3", calls)
	}
	if Until(0, func() bool { return false }) {
		t.Error("Until(0, false) = true")
	}
}

func TestConnsCountsOpenConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello")
			_ = c.Close()
		}
	}()

	var conns Conns
	a, err := conns.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := conns.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if got := conns.Open(); got != 2 {
		t.Errorf("Open() = %d after two dials; want 2", got)
	}
	if _, err := io.ReadAll(a); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	_ = a.Close() // a second Close does not count twice
	if got := conns.Open(); got != 1 {
		t.Errorf("Open() = %d after one close; want 1", got)
	}
	_ = b.Close()
	if got, dialed, read := conns.Open(), conns.Dialed(), conns.BytesRead(); got != 0 || dialed != 2 || read != 5 {
		t.Errorf("Open, Dialed, BytesRead = %d, %d, %d; want 0, 2, 5", got, dialed, read)
	}
	if _, err := conns.DialContext(t.Context(), "tcp", "127.0.0.1:1"); err == nil {
		t.Error("dialing a closed port succeeded")
	}
	if got := conns.Dialed(); got != 2 {
		t.Errorf("Dialed() = %d after a failed dial; want 2", got)
	}
}
