// This file keeps a Fleet's memory of the fleet's cooldowns up to date:
// the subscription to the channel, the messages applied to the table,
// and the resynchronisation from the keys on every (re)subscribe.

package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/redis/go-redis/v9"
)

// raise records what the member learnt of host: a cooldown until, a queue
// that drains at drain (either may be zero); shared says it was learnt
// from the fleet (a message or Redis), not from this member's own answer.
// It reports whether until is later, by more than slack, than the
// cooldown the fleet is known to hold: whether it is worth announcing.
func (f *Fleet) raise(host string, until, drain time.Time, gap time.Duration, cause neuracraft.Code, shared bool) bool {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.hosts[host]
	if !ok && len(f.hosts) >= maxHosts {
		for h, old := range f.hosts {
			if !old.until.After(now) && !old.drain.After(now) {
				delete(f.hosts, h)
			}
		}
		if len(f.hosts) >= maxHosts {
			return false // the table is full of live hosts: the Transport's own cooldown applies
		}
	}
	raised := until.After(later(e.shared, e.pending).Add(slack))
	switch {
	case shared && until.After(e.shared):
		e.shared = until
	case !shared && raised:
		e.pending = until // announced now: the member's other calls need not
	}
	if until.After(e.until) {
		e.until, e.gap, e.cause = until, gap, cause
	}
	if drain.After(e.drain) {
		e.drain = drain
	}
	if e.cause == 0 {
		e.cause = cause
	}
	f.hosts[host] = e
	f.live.Store(int32(len(f.hosts)))
	return raised
}

// settleAnnounce records the end of the announcement of host's cooldown
// until until: when it reached Redis (ok), the fleet holds the cooldown;
// either way it is no longer pending, so a later announcement that did
// not reach Redis is sent again.
func (f *Fleet) settleAnnounce(host string, until time.Time, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, found := f.hosts[host]
	if !found {
		return
	}
	if ok && until.After(e.shared) {
		e.shared = until
	}
	if e.pending.Equal(until) {
		e.pending = time.Time{}
	}
	f.hosts[host] = e
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// forget drops host's entry when its cooldown and queue are over.
func (f *Fleet) forget(host string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.hosts[host]; ok && !e.until.After(now) && !e.drain.After(now) {
		delete(f.hosts, host)
		f.live.Store(int32(len(f.hosts)))
	}
}

// apply reads a message of the channel, "pause gap cause host" (µs),
// received at now.
func (f *Fleet) apply(payload string, now time.Time) {
	fields := strings.Fields(payload)
	if len(fields) != 4 {
		f.report(fmt.Errorf("%w: message of %d fields", ErrGarbled, len(fields)))
		return
	}
	pause, err1 := strconv.ParseInt(fields[0], 10, 64)
	gap, err2 := strconv.ParseInt(fields[1], 10, 64)
	cause, err3 := strconv.Atoi(fields[2])
	host := fields[3]
	if err1 != nil || err2 != nil || err3 != nil || pause <= 0 || gap < 0 || !validHost(host) {
		f.report(fmt.Errorf("%w: message %.80q", ErrGarbled, payload))
		return
	}
	f.raise(host, now.Add(min(fromMicros(pause), f.opt.MaxRetryAfter)), time.Time{},
		min(fromMicros(gap), maxGap), validCause(neuracraft.Code(cause)), true)
}

// subscribe runs until Close: it subscribes to the channel, reads the
// state of the hosts in the index on every (re)subscription, applies the
// messages, pings a silent connection and replaces a dead one.
func (f *Fleet) subscribe(synced chan<- struct{}) {
	defer f.wg.Done()
	first := true
	for f.ctx.Err() == nil {
		ps := f.rdb.Subscribe(f.ctx) // no channel yet: no I/O
		f.lifeMu.Lock()
		if f.closed {
			f.lifeMu.Unlock()
			_ = ps.Close()
			return
		}
		f.ps = ps
		f.lifeMu.Unlock()
		ctx, cancel := context.WithTimeout(f.ctx, f.opt.OpTimeout)
		err := ps.Subscribe(ctx, f.channel)
		cancel()
		if err != nil && f.ctx.Err() == nil {
			f.fail(fmt.Errorf("redisfleet: subscribe: %w", err))
		}
		f.receive(ps, func() {
			f.resync()
			if first {
				first = false
				close(synced)
			}
		})
		_ = ps.Close()
		f.pause()
	}
}

// receive reads ps until it fails for good or the Fleet closes, calling
// onSubscribe at each (re)subscription.
func (f *Fleet) receive(ps *redis.PubSub, onSubscribe func()) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(f.ctx, pingInterval)
		if f.ctx.Err() != nil {
			return
		}
		var netErr interface{ Timeout() bool }
		switch {
		case err == nil:
			pinged = false
		case errors.As(err, &netErr) && netErr.Timeout() && !pinged:
			pinged = true
			ctx, cancel := context.WithTimeout(f.ctx, f.opt.OpTimeout)
			_ = ps.Ping(ctx)
			cancel()
			continue
		default: // an error, or a ping left unanswered: go-redis may reconnect, but start afresh
			if pinged && err != nil && errors.As(err, &netErr) && netErr.Timeout() {
				err = errors.New("no answer to a ping")
			}
			f.fail(fmt.Errorf("redisfleet: subscription: %w", err))
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f.downTill.Store(0)
				onSubscribe()
			}
		case *redis.Message:
			f.apply(m.Payload, time.Now())
		}
	}
}

// resync reads the state of every host in the index, for a member that
// (re)subscribes: what was announced while it was not listening.
func (f *Fleet) resync() {
	hosts, err := do(f, f.ctx, "resync", func(ctx context.Context) ([]string, error) {
		return f.rdb.ZRevRange(ctx, f.index, 0, maxHosts-1).Result()
	})
	if err != nil || len(hosts) == 0 {
		return
	}
	valid := hosts[:0]
	for _, h := range hosts {
		if validHost(h) {
			valid = append(valid, h)
		}
	}
	start := time.Now()
	cmds, err := do(f, f.ctx, "resync", func(ctx context.Context) ([]*redis.Cmd, error) {
		pipe := f.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(valid))
		for i, h := range valid {
			cmds[i] = peekScript.Eval(ctx, pipe, f.keys(h), f.capMicros())
		}
		_, err := pipe.Exec(ctx)
		if errors.Is(err, redis.Nil) {
			err = nil
		}
		return cmds, err
	})
	if err != nil {
		return
	}
	limit := micros(f.opt.MaxRetryAfter)
	for i, cmd := range cmds {
		v, err := cmd.Int64Slice()
		if err != nil || len(v) == 0 {
			continue
		}
		if len(v) != 4 || v[2] < 0 {
			f.report(fmt.Errorf("%w: state of %s: %v", ErrGarbled, valid[i], v))
			continue
		}
		if v[1] <= 0 {
			continue // over
		}
		f.raise(valid[i], start.Add(capped(v[0], limit)), start.Add(capped(v[1], limit)),
			min(fromMicros(v[2]), maxGap), validCause(neuracraft.Code(v[3])), true)
	}
}
