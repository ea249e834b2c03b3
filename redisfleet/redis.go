// This file runs a Fleet's commands against Redis within OpTimeout, backs
// off after a failure, and validates what goes in and comes out.

package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neuracraft/neuracraft-go"
)

// do runs op against Redis with a timeout of OpTimeout, on a goroutine of
// its own so that a Redis that does not answer cannot hold the caller
// longer, even when the client ignores contexts. It fails at once while
// the Fleet is closed or Redis failed within RetryInterval.
func do[T any](f *Fleet, ctx context.Context, what string, op func(context.Context) (T, error)) (T, error) {
	var zero T
	if f.rdb == nil {
		return zero, errNoRedis
	}
	f.lifeMu.Lock()
	if f.closed {
		f.lifeMu.Unlock()
		return zero, errClosed
	}
	if now := int64(time.Since(f.born)); now < f.downTill.Load() {
		f.lifeMu.Unlock()
		return zero, errDown
	}
	f.wg.Add(1)
	f.lifeMu.Unlock()
	opCtx, cancel := context.WithTimeout(ctx, f.opt.OpTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer f.wg.Done()
		v, err := op(opCtx)
		done <- result{v, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-opCtx.Done():
		r.err = opCtx.Err()
	}
	if r.err == nil {
		return r.v, nil
	}
	if ctx.Err() != nil { // the caller gave up: not Redis's fault
		return zero, ctx.Err()
	}
	if errors.Is(r.err, context.DeadlineExceeded) {
		r.err = fmt.Errorf("no answer within %v: %w", f.opt.OpTimeout, r.err)
	}
	err := fmt.Errorf("redisfleet: %s: %w", what, r.err)
	f.fail(err)
	return zero, err
}

// fail reports err and stops trying Redis for RetryInterval.
func (f *Fleet) fail(err error) {
	f.downTill.Store(int64(time.Since(f.born) + f.opt.RetryInterval))
	f.report(err)
}

func (f *Fleet) report(err error) {
	if f.opt.OnError != nil {
		f.opt.OnError(err)
	}
}

// pause waits RetryInterval, or until Close.
func (f *Fleet) pause() {
	t := time.NewTimer(f.opt.RetryInterval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-f.ctx.Done():
	}
}

// keys are host's state and holes, in one hash slot.
func (f *Fleet) keys(host string) []string {
	tag := "{" + f.opt.Prefix + ":" + host + "}"
	return []string{tag + ":cooldown", tag + ":holes"}
}

func (f *Fleet) capMicros() int64 { return micros(f.opt.MaxRetryAfter) }

// capped is us microseconds, at most limit (a value read from Redis).
func capped(us, limit int64) time.Duration { return fromMicros(min(us, limit)) }

func micros(d time.Duration) int64 { return int64(d / time.Microsecond) }

func fromMicros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

func validCause(c neuracraft.Code) neuracraft.Code {
	if c == 503 {
		return 503
	}
	return 429
}

// validHost reports whether host may go into Redis: a URL host (name or
// address, and port), printable ASCII without spaces, braces or '@', at
// most 300 bytes.
func validHost(host string) bool {
	if host == "" || len(host) > 300 {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c <= ' ' || c >= 0x7f || c == '{' || c == '}' || c == '@' {
			return false
		}
	}
	return true
}
