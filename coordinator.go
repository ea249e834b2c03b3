// This file holds Coordinator, the hook through which several processes
// share a host's cooldown and the order of the requests it held, and the
// Transport's side of it (announceCooldown, call.waitFleet).

package neuracraft

import (
	"context"
	"time"
)

// A Coordinator shares the cooldown of a host among the processes of a
// fleet (the replicas of a service that share one API key, and so one rate
// limit), and hands out the order in which their held requests go once it
// ends. The package redisfleet (module
// github.com/neuracraft/neuracraft-go/redisfleet) implements it on Redis.
//
// A [Transport] with a Coordinator keeps its own cooldown as well: it
// tells the Coordinator of every cooldown it starts, asks it about
// cooldowns started elsewhere, and, while the Coordinator knows one, asks
// it for each held request's turn instead of taking one in its own queue.
// When the Coordinator fails (Reserve returns an error), the request
// falls back to the Transport's own queue: a Coordinator is a helper,
// never a reason a request fails.
//
// All methods are called by many goroutines at once and must be safe for
// concurrent use. None is ever called with a lock of the Transport held,
// and none may call back into the Transport.
type Coordinator interface {
	// Cooldown reports what the Coordinator knows, from memory only, of a
	// fleet-wide cooldown of host: until is when it ends (in the local
	// clock; it may have passed while the fleet's release queue still
	// drains), cause the status that started it (429 or 503), and ok
	// whether requests to host should take a fleet turn now, that is,
	// host is cooling down or its release queue is known not to be empty.
	//
	// The Transport calls Cooldown before every request, so it must not
	// block, do I/O or allocate: while no cooldown is known, a Transport
	// with a Coordinator costs what one without does.
	Cooldown(host string) (until time.Time, cause Code, ok bool)

	// Announce tells the fleet that host answered cause (429 or 503) with
	// a Retry-After of pause, which the Transport honours: requests to
	// host should wait until pause from now, and then go one at a time,
	// gap apart. A later Cooldown(host) must report it at once, whatever
	// becomes of the message to the fleet.
	//
	// The Transport calls Announce on the goroutine of the request that
	// got the answer, before it waits. Announce may do I/O, but must
	// return within a short bound of its own (tens of milliseconds)
	// whatever the state of the store behind it; it reports its failures
	// through its own means, not to the Transport.
	Announce(host string, pause, gap time.Duration, cause Code)

	// Reserve takes the next free turn of a request to host in the
	// fleet-wide release queue, and returns how long from now the request
	// should wait before it is sent. Turns follow each other gap apart
	// from the end of the cooldown, across the fleet.
	//
	// When ctx has a deadline before the turn, Reserve reserves nothing
	// and returns a Turn whose Wait ends after that deadline; the
	// Transport then fails the request unsent with a [*CooldownError].
	//
	// The Transport calls Reserve on the goroutine of a held request,
	// only while Cooldown reports ok. Reserve may do I/O but must return
	// within a short bound of its own, also when ctx has no deadline. An
	// error sends the request to the Transport's own queue.
	Reserve(ctx context.Context, host string) (Turn, error)

	// Cancel gives back turn, taken by Reserve for host, when the request
	// that held it gives up before its turn came (its context ended), so
	// that the fleet does not keep a gap for nobody. The Transport may
	// also cancel a turn that Reserve refused (one past the deadline);
	// Cancel must then change nothing. Like Announce, it must return
	// within a short bound and reports its own failures.
	Cancel(host string, turn Turn)
}

// A Turn is a held request's place in a fleet-wide release queue, as
// given by [Coordinator.Reserve].
type Turn struct {
	// Wait is how long from the return of Reserve until the request may
	// be sent.
	Wait time.Duration
	// ID names the turn for Coordinator.Cancel; only the Coordinator
	// that gave it reads it.
	ID int64
}

// announceCooldown tells t's Coordinator of a cooldown of d that t starts
// for host. It must be called with no lock held: Announce may do I/O.
func (t *Transport) announceCooldown(host string, d time.Duration, cause Code) {
	if t.Coordinator != nil {
		t.Coordinator.Announce(host, d, releaseGap(d), cause)
	}
}

// waitFleet holds the call while its Transport's Coordinator knows a
// fleet-wide cooldown or release queue for its host: it takes the call's
// turn in the fleet's queue and sleeps until it comes, as waitTurn does
// with the local queue. done reports that the wait was decided here, with
// err the error the call ends with; when it is false (no fleet cooldown
// is known, or the Coordinator failed), the local queue decides, and after
// a failure it holds the fleet's cooldown too.
//
// A call whose context is already done reserves nothing. A call whose
// deadline comes before its turn fails at once, unsent, with a
// *CooldownError. A call whose context ends while it waits gives its turn
// back. A call that a new cooldown catches while it waits queues again.
// While no cooldown is known, it costs one Cooldown lookup: no lock of
// the Transport, no allocation.
func (c *call) waitFleet() (done bool, err error) {
	co := c.t.Coordinator
	for queued := false; ; queued = true {
		until, cause, ok := co.Cooldown(c.host)
		now := time.Now()
		if !ok || (queued && !until.After(now)) {
			return queued, nil
		}
		if err := c.ctx.Err(); err != nil {
			return true, c.abandon(err)
		}
		if deadline, ok := c.ctx.Deadline(); ok && until.After(deadline) {
			return true, c.abandon(c.cooldownError(cause, until.Sub(now)))
		}
		turn, err := co.Reserve(c.ctx, c.host)
		if err != nil {
			if rest := until.Sub(now); rest > 0 { // the local queue takes over
				if c.hostState().coolUntil(now.Add(rest), rest, cause) {
					c.paceChanged(cooldownPace(rest))
				}
			}
			return false, nil
		}
		if deadline, ok := c.ctx.Deadline(); ok && time.Now().Add(turn.Wait).After(deadline) {
			co.Cancel(c.host, turn) // in case it was reserved after all
			return true, c.abandon(c.cooldownError(cause, turn.Wait))
		}
		if err := c.wait(fleetWait, turn.Wait); err != nil {
			co.Cancel(c.host, turn)
			return true, c.abandon(err)
		}
	}
}
