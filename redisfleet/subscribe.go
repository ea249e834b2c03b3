// This file keeps a Fleet's memory of the fleet's cooldowns up to date:
// what the member learns (raise), the subscription to the channel, the
// messages applied to the table, and the resynchronisation from the keys
// on every (re)subscribe.

package redisfleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/neuracraft/neuracraft-go/internal/limits"
	"github.com/redis/go-redis/v9"
)

// state is what a member learns of a host at once: a cooldown until, a
// queue that drains at drain, a pace that holds until paced (any may be
// zero), its gap, cause and epoch (zero: not from Redis); and, for an
// announcement, the turn whose answer it was (its ticket).
type state struct {
	until, drain, paced time.Time
	gap                 time.Duration
	cause               neuracraft.Code
	epoch               int64
	ticket              neuracraft.Turn
}

// stateAt reads what Redis answered of a host, at the server's now taken
// to be at (the member's clock): the rest of the cooldown and of the
// queue (µs), gap (ns), cause, epoch and the rest of the pace (µs). ok is
// false for values out of range.
func (f *Fleet) stateAt(at time.Time, epoch, untilUS, drainUS, gapNS, cause, paceUS int64) (st state, ok bool) {
	limit := micros(maxPause)
	if epoch < 0 || !plausibleEpoch(epoch, at) || untilUS > limit || drainUS > limit || gapNS < 0 || gapNS > int64(maxGap) ||
		paceUS < 0 || paceUS > micros(limits.PaceQuiet) {
		return state{}, false
	}
	return state{until: at.Add(fromMicros(untilUS)), drain: at.Add(fromMicros(drainUS)), paced: at.Add(fromMicros(paceUS)),
		gap: time.Duration(gapNS), cause: validCause(neuracraft.Code(cause)), epoch: epoch}, true
}

// plausibleEpoch reports whether epoch, read from Redis or the channel,
// can be one that the scripts made by now: they are Redis's clock in µs
// when they started a cooldown, and a script never accepts a time more
// than maxPause ahead of its own; the member allows as much again for
// the difference between its clock and Redis's. A larger one (garbled or
// hostile) would stay the member's epoch for good, and every held call
// would ask for its turn again for it.
func plausibleEpoch(epoch int64, now time.Time) bool {
	return epoch <= now.UnixMicro()+2*micros(maxPause)
}

// raise records what the member learnt of host; shared says it was
// learnt from the fleet (a message or Redis), not from this member's own
// answer. It reports whether st.until is later, by more than slack, than
// the cooldown the fleet is known to hold: whether it is worth
// announcing.
func (f *Fleet) raise(host string, st state, shared bool) bool {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.hosts[host]
	if !ok && len(f.hosts) >= maxHosts {
		for h, old := range f.hosts {
			if old.over(now) {
				delete(f.hosts, h)
			}
		}
		if len(f.hosts) >= maxHosts {
			return false // the table is full of live hosts: the Transport's own cooldown applies
		}
	}
	raised := st.until.After(later(e.shared, e.pending).Add(slack))
	switch {
	case shared && st.until.After(e.shared):
		e.shared = st.until
	case !shared && raised:
		e.pending = st.until // announced now: the member's other calls need not
	}
	if st.until.After(e.until) {
		e.until, e.cause = st.until, st.cause
	}
	if st.drain.After(e.drain) {
		e.drain = st.drain
	}
	switch {
	case shared && st.epoch >= e.epoch: // Redis's word on the pace: it may have ended
		e.paced = st.paced
	case st.paced.After(e.paced):
		e.paced = st.paced
	}
	if st.epoch >= e.epoch && st.gap > 0 {
		e.epoch, e.gap = st.epoch, st.gap
	}
	if e.cause == 0 {
		e.cause = st.cause
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

// over reports whether e's cooldown, queue and pace are over at now.
func (e entry) over(now time.Time) bool {
	return !e.until.After(now) && !e.drain.After(now) && !e.paced.After(now)
}

// forget drops host's entry when its cooldown, queue and pace are over.
func (f *Fleet) forget(host string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.hosts[host]; ok && e.over(now) {
		delete(f.hosts, host)
		f.live.Store(int32(len(f.hosts)))
	}
}

// apply reads a message of the channel, "epoch pause gap cause host
// pace" (pause, gap and the rest of the pace in µs; members before the
// pace was shared sent no pace), received at now.
func (f *Fleet) apply(payload string, now time.Time) {
	fields := strings.Fields(payload)
	if len(fields) != 5 && len(fields) != 6 {
		f.report(fmt.Errorf("%w: message of %d fields", ErrGarbled, len(fields)))
		return
	}
	epoch, err0 := strconv.ParseInt(fields[0], 10, 64)
	pause, err1 := strconv.ParseInt(fields[1], 10, 64)
	gap, err2 := strconv.ParseInt(fields[2], 10, 64)
	cause, err3 := strconv.Atoi(fields[3])
	host := fields[4]
	var pace int64
	var err4 error
	if len(fields) == 6 {
		pace, err4 = strconv.ParseInt(fields[5], 10, 64)
	}
	if err0 != nil || err1 != nil || err2 != nil || err3 != nil || err4 != nil || epoch <= 0 || !plausibleEpoch(epoch, now) || pause <= 0 ||
		pause > micros(maxPause) || gap <= 0 || pace < 0 || pace > micros(limits.PaceQuiet) || !validHost(host) {
		f.report(fmt.Errorf("%w: message %.80q", ErrGarbled, payload))
		return
	}
	f.raise(host, state{until: now.Add(fromMicros(pause)), paced: now.Add(fromMicros(pace)),
		gap: fromMicros(min(gap, micros(maxGap))), cause: validCause(neuracraft.Code(cause)), epoch: epoch}, true)
}

// subscribe runs until Close: it subscribes to the channel, reads the
// state of the hosts in the index on every (re)subscription, applies the
// messages, pings a silent connection and replaces a dead one. Every
// command it sends, the reconnections of go-redis included, is bounded by
// OpTimeout (with ContextTimeoutEnabled), so that Close never waits
// longer for it.
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
		if err == nil {
			f.receive(ps, func() {
				f.peekAll()
				if first {
					first = false
					close(synced)
				}
				f.loadScripts()
			})
		}
		_ = ps.Close()
		f.pause()
	}
}

// receive reads ps until it fails for good or the Fleet closes, calling
// onSubscribe at each (re)subscription. It reads in slices of OpTimeout,
// so that a reconnection go-redis starts after a failed read is bounded
// by that too.
func (f *Fleet) receive(ps *redis.PubSub, onSubscribe func()) {
	heard := time.Now()
	var pinged time.Time
	for {
		ctx, cancel := context.WithTimeout(f.ctx, f.opt.OpTimeout)
		msg, err := ps.ReceiveTimeout(ctx, f.opt.OpTimeout)
		cancel()
		if f.ctx.Err() != nil {
			return
		}
		var netErr interface{ Timeout() bool }
		if err != nil && errors.As(err, &netErr) && netErr.Timeout() {
			switch {
			case pinged.IsZero() && time.Since(heard) >= pingInterval:
				pinged = time.Now()
				ctx, cancel := context.WithTimeout(f.ctx, f.opt.OpTimeout)
				_ = ps.Ping(ctx)
				cancel()
			case !pinged.IsZero() && time.Since(pinged) >= pingInterval:
				f.fail(errors.New("redisfleet: subscription: no answer to a ping"))
				return
			}
			continue
		}
		if err != nil { // go-redis may reconnect, but start afresh
			f.fail(fmt.Errorf("redisfleet: subscription: %w", err))
			return
		}
		heard, pinged = time.Now(), time.Time{}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				f.down.Store(false) // Redis answers again
				onSubscribe()
			}
		case *redis.Message:
			f.apply(m.Payload, time.Now())
		}
	}
}

// loadScripts loads the scripts into Redis, so that a request's first
// turn costs one round trip, not two.
func (f *Fleet) loadScripts() {
	for _, script := range []*redis.Script{reserveScript, announceScript, indexScript, cancelScript} {
		if _, err := do(f, f.ctx, "script load", 0, func(ctx context.Context) (string, error) {
			return script.Load(ctx, f.rdb).Result()
		}); err != nil {
			return
		}
	}
}

// peekAll reads the state of every host in the index, for a member that
// (re)subscribes: what was announced while it was not listening.
func (f *Fleet) peekAll() {
	hosts, err := do(f, f.ctx, "resync", 0, func(ctx context.Context) ([]string, error) {
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
	cmds, err := do(f, f.ctx, "resync", 0, func(ctx context.Context) ([]*redis.Cmd, error) {
		pipe := f.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(valid))
		for i, h := range valid {
			cmds[i] = peekScript.Eval(ctx, pipe, f.keys(h), f.args()...)
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
	for i, cmd := range cmds {
		v, err := cmd.Int64Slice()
		if err != nil || len(v) == 0 {
			continue
		}
		st, ok := state{}, len(v) == 6
		if ok {
			st, ok = f.stateAt(start, v[4], v[0], v[1], v[2], v[3], v[5])
		}
		if !ok {
			f.report(fmt.Errorf("%w: state of %s: %v", ErrGarbled, valid[i], v))
			continue
		}
		if st.drain.After(start) || st.paced.After(start) {
			f.raise(valid[i], st, true)
		}
	}
}
