// This file runs a Fleet's commands against Redis within what is left of
// a request's OpTimeout, marks Redis down after a failure, and validates
// what goes in and comes out.

package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/internal/limits"
)

// do runs op against Redis for a request that has already waited spent
// on the Fleet's methods: with a timeout of what is left of OpTimeout, on
// a goroutine of its own so that a Redis that does not answer cannot
// hold the caller longer, even when the client ignores contexts. It fails
// at once while the Fleet is closed, while Redis is down (an operation
// failed and no ping has been answered since) or when nothing is left of
// OpTimeout. A failure of Redis marks it down, but for a timeout while
// Redis answered another command of the Fleet: Redis is slow for this one
// (a busy machine, a connection being set up), not down.
func do[T any](f *Fleet, ctx context.Context, what string, spent time.Duration, op func(context.Context) (T, error)) (T, error) {
	var zero T
	if f.rdb == nil {
		return zero, errNoRedis
	}
	if f.ctx.Err() != nil {
		return zero, errClosed
	}
	if f.down.Load() {
		return zero, errDown
	}
	left := f.opt.OpTimeout - spent
	if left <= 0 {
		return zero, errSpent
	}
	began := time.Now().UnixNano()
	v, err := run(f, ctx, left, op)
	if err == nil {
		f.answered.Store(time.Now().UnixNano())
		return v, nil
	}
	if errors.Is(err, errClosed) {
		return v, err
	}
	if ctx.Err() != nil { // the caller gave up: not Redis's fault
		return zero, ctx.Err()
	}
	timeout := errors.Is(err, context.DeadlineExceeded)
	if timeout {
		err = fmt.Errorf("no answer within %v: %w", left, err)
	}
	err = fmt.Errorf("redisfleet: %s: %w", what, err)
	if timeout && (left < f.opt.OpTimeout || f.answered.Load() > began) {
		// Only the rest of the request's time ran out, or Redis answered
		// others meanwhile: Redis may be slow rather than down, the other
		// requests still try it.
		f.report(err)
		return zero, err
	}
	f.fail(err)
	return zero, err
}

// run runs op with a timeout of d on a goroutine of its own, which the
// Fleet's Close waits for, and returns when op does or d has passed.
func run[T any](f *Fleet, ctx context.Context, d time.Duration, op func(context.Context) (T, error)) (T, error) {
	var zero T
	f.lifeMu.Lock()
	if f.closed {
		f.lifeMu.Unlock()
		return zero, errClosed
	}
	f.wg.Add(1)
	f.lifeMu.Unlock()
	opCtx, cancel := context.WithTimeout(ctx, d)
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
	select {
	case r := <-done:
		return r.v, r.err
	case <-opCtx.Done():
		return zero, opCtx.Err()
	}
}

// fail reports err and marks Redis down: requests leave it alone until
// the Fleet's background goroutine sees it answer a ping.
func (f *Fleet) fail(err error) {
	if !f.down.Swap(true) {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
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

// keys are host's state, holes, turns and tickets (luaPrelude), in one
// hash slot.
func (f *Fleet) keys(host string) []string {
	tag := "{" + f.opt.Prefix + ":" + host + "}"
	return []string{tag + ":cooldown", tag + ":holes", tag + ":turns", tag + ":tickets"}
}

func micros(d time.Duration) int64 { return int64(d / time.Microsecond) }

func fromMicros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// validGap is a release gap a Fleet proposes for a host that is not
// paced: at most maxGap, and the Transport's longest
// (limits.MaxReleaseGap) when unknown.
func validGap(g time.Duration) time.Duration {
	if g <= 0 {
		return limits.MaxReleaseGap
	}
	return min(g, maxGap)
}

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
