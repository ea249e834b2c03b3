// This file holds Coordinator, the hook through which several processes
// share a host's cooldown, the order of the requests it held and the pace
// they go at, the values it exchanges with a Transport (Cooldown, Pause,
// Hold, Turn), and the Transport's side of it (call.announce,
// call.waitFleet).

package neuracraft

import (
	"context"
	"time"
)

// A Coordinator shares the cooldown of a host among the processes of a
// fleet (the replicas of a service that share one API key, and so one rate
// limit), hands out the order in which their held requests go once it
// ends, and paces them: the fleet's pace after pushback stands for each
// Transport's own (pace.go), learnt from the pushback its members meet. The
// package redisfleet (module github.com/neuracraft/neuracraft-go/redisfleet)
// implements it on Redis.
//
// A [Transport] with a Coordinator keeps its own cooldown and pace as
// well: it tells the Coordinator of every cooldown it starts (with the
// turn of the request that met it), asks it about cooldowns started
// elsewhere, and, while the Coordinator knows one or paces the host, asks
// it once for each request's turn instead of taking one in its own queue.
// The Transport keeps two rules whatever the Coordinator says: a request
// is never sent before the end of a Retry-After that the Transport itself
// honoured for its host (its own cooldown stays a floor), and no request
// waits longer than RetryPolicy.MaxRetryAfter because of the fleet (a
// garbled or hostile value held by the Coordinator can hold a request at
// most that long). When the Coordinator fails (Reserve returns an error),
// the request falls back to the Transport's own queue: a Coordinator is a
// helper, never a reason a request fails.
//
// All methods are called by many goroutines at once and must be safe for
// concurrent use. None is ever called with a lock of the Transport held,
// and none may call back into the Transport.
type Coordinator interface {
	// Cooldown reports what the Coordinator knows, from memory only, of a
	// fleet-wide cooldown of host; ok reports whether requests to host
	// should take a fleet turn now, that is, host is cooling down, its
	// release queue is known not to be empty, or the fleet paces it.
	//
	// The Transport calls Cooldown before every request, and after the
	// success of one that went without a turn (call.joinFleetWave), so it
	// must not block, do I/O or allocate: while no cooldown is known, a
	// Transport with a Coordinator costs what one without does.
	Cooldown(host string) (c Cooldown, ok bool)

	// Announce tells the fleet that host asked for the pause p, which the
	// Transport honours: requests to host should wait p.RetryAfter from
	// now, and then go one at a time, at the fleet's pace (which the pause
	// engages, or cuts when p.Turn was let go at it). A later
	// Cooldown(host) must report it at once, whatever becomes of the
	// message to the fleet.
	//
	// The Transport calls Announce on the goroutine of the request that
	// got the answer, before it waits. Announce may do I/O, but must
	// return within a short bound of its own whatever the state of the
	// store behind it, less p.Spent; it reports its failures through its
	// own means, not to the Transport.
	Announce(host string, p Pause)

	// Reserve takes the turn of a held request to host in the fleet-wide
	// release queue, and returns how long from now the request should
	// wait before it is sent. Turns follow each other at the fleet's pace
	// from the end of the cooldown, across the fleet, in the order they
	// were asked; a turn comes no earlier than h.Floor. A request whose
	// turn was given before a new cooldown (a Cooldown with a larger Epoch
	// than its Turn's) asks again with h.Requeue set, and keeps its place
	// among the requests held before it.
	//
	// When the turn would come after ctx's deadline or after h.MaxWait,
	// Reserve reserves nothing and returns a Turn with ID 0 whose Wait
	// says when it would have come: the Transport then fails a request
	// whose deadline cannot wait with a [*CooldownError], and sends
	// another after h.MaxWait.
	//
	// The Transport calls Reserve on the goroutine of a held request,
	// only while Cooldown reports ok, once per cooldown the request meets.
	// Reserve may do I/O but must return within a short bound of its own
	// (less h.Spent), also when ctx has no deadline. An error sends the
	// request to the Transport's own queue.
	Reserve(ctx context.Context, host string, h Hold) (Turn, error)

	// Cancel gives back turn, taken by Reserve for host, when the request
	// that held it gives up before its turn came (its context ended), so
	// that the fleet does not keep a gap for nobody. A turn with ID 0
	// reserved nothing and is not given back. Cancel must not block: the
	// request that gives up is on its way out.
	Cancel(host string, turn Turn)
}

// A Cooldown is a fleet-wide cooldown of a host, as a [Coordinator]
// knows it.
type Cooldown struct {
	// Until is when the cooldown ends, in the local clock. It may have
	// passed while the fleet's release queue still drains.
	Until time.Time
	// Gap is the time between two turns of the fleet's release queue:
	// the fleet's pace, or, while the fleet does not pace the host, the
	// release gap of the cooldown.
	Gap time.Duration
	// Cause is the status that started the cooldown: 429 or 503.
	Cause Code
	// Epoch tells cooldowns of one host apart: a cooldown that starts
	// while another runs or its queue drains has a larger Epoch. Turns
	// given in an earlier Epoch are asked again (Hold.Requeue).
	Epoch int64
}

// A Pause is what a [Transport] tells its [Coordinator] of a Retry-After
// it honours (Coordinator.Announce).
type Pause struct {
	// RetryAfter is the pause the server asked for, from now; the
	// Transport honours it, and the fleet should not shorten it.
	RetryAfter time.Duration
	// Gap is the spacing the Transport proposes for the requests held by
	// the pause while the fleet does not pace the host (releaseGap): one
	// every Gap once it ends.
	Gap time.Duration
	// Cause is the status of the answer: 429 or 503.
	Cause Code
	// Spent is how long the request has already waited on the
	// Coordinator's methods; a Coordinator that bounds the time a request
	// spends waiting on it counts it.
	Spent time.Duration
	// Turn is the fleet turn the request that got the answer was let go
	// at (its ticket), or the zero Turn when it was not let go by the
	// fleet: a pause met by a turn let go at the fleet's pace says the
	// pace was too fast, once (turns let go before the pace changed are
	// no news).
	Turn Turn
}

// A Hold is what a held request asks [Coordinator.Reserve] for.
type Hold struct {
	// Floor is what is left of the Transport's own cooldown of the host:
	// the turn must not come before it.
	Floor time.Duration
	// MaxWait is the longest the request may still wait because of the
	// fleet: what is left of the Transport's RetryPolicy.MaxRetryAfter.
	// Zero means no limit.
	MaxWait time.Duration
	// Spent is how long the request has already waited on the
	// Coordinator's methods (see Pause.Spent).
	Spent time.Duration
	// Requeue is the turn the request held when a new cooldown came, or
	// the zero Turn for its first.
	Requeue Turn
	// Admitted is how many successes of the host's first wave the
	// Transport counted since it last told the Coordinator: answers to
	// requests sent before the pushback that engaged its pace, the first
	// within 50 ms of it and each next within 6.25 ms of the last. Each member
	// sees its own part of the first wave; a Coordinator adds the parts
	// up, and from 3 on the fleet's slow start climbs linearly, as one
	// Transport's does. A member whose own part is 3 or more (a burst of
	// its own: single successes of several members may be a strict
	// limiter's, one every so often) lets it go at the end of the pause
	// without turns. A member that met no pushback of its own counts the
	// successes answered while the fleet's cooldown runs to requests that
	// went without a turn, and tells them from 3 on only.
	Admitted int
}

// A Turn is a held request's place in a fleet-wide release queue, as
// given by [Coordinator.Reserve].
type Turn struct {
	// Wait is how long from the return of Reserve until the request may
	// be sent.
	Wait time.Duration
	// ID names the turn for the Coordinator, and stays the same when the
	// turn is asked again (Hold.Requeue); 0 means nothing was reserved
	// (the turn would come past the request's deadline or MaxWait).
	ID int64
	// Epoch is the Epoch of the cooldown the turn was given in.
	Epoch int64
	// Gap is the pace the turn was let go at, or 0 when the fleet did not
	// pace it: with Epoch and ID, what the Coordinator needs to learn from
	// the answer (Pause.Turn).
	Gap time.Duration
}

// announce tells the call's Coordinator of a cooldown of d that its
// Transport starts for the call's host, after an answer with status
// cause. It must be called with no lock held: Announce may do I/O.
func (c *call) announce(d time.Duration, cause Code) {
	co := c.t.Coordinator
	if co == nil {
		return
	}
	began := time.Now()
	co.Announce(c.host, Pause{RetryAfter: d, Gap: releaseGap(d), Cause: cause, Spent: c.fleetSpent, Turn: c.fleetTurn})
	c.fleetSpent += time.Since(began)
}

// waitFleet holds the call while its Transport's Coordinator knows a
// fleet-wide cooldown, release queue or pace for its host: it takes the
// call's turn in the fleet's queue once and sleeps until it comes, as
// waitTurn does with the local queue, and records the turn in
// c.fleetTurn; it takes a turn again only when a new cooldown (a larger
// Epoch) came after its turn was given. done reports that the wait was
// decided here, with err the error the call ends with; when it is false
// (no fleet cooldown is known, the Coordinator failed, or the Transport's
// own cooldown is not over), the local queue decides, and after a
// failure it holds the fleet's cooldown too (as a fleet's: the other
// held calls keep their turns). With an Observer, a call let go at a
// fleet turn tells the fleet's pace (call.fleetPaced), and one that finds
// the fleet holding the host no more ends the fleet's pace it told.
//
// The fleet holds the call at most the Transport's MaxRetryAfter. However
// many sleeps the hold takes (a look once the first wave is counted, a
// turn asked again after a new cooldown), an Observer is told one wait of
// kind "fleet", from the first sleep to the call's release. A call
// whose context is already done reserves nothing. A call whose deadline
// comes before its turn fails at once, unsent, with a *CooldownError. A
// call whose context ends while it waits gives its turn back. While no
// cooldown is known, it costs one Cooldown lookup: no lock of the
// Transport, no allocation.
func (c *call) waitFleet() (done bool, err error) {
	co := c.t.Coordinator
	c.fleetTurn = Turn{}
	cd, ok := co.Cooldown(c.host)
	if !ok {
		c.fleetPaced(0) // a fleet's pace told ends
		return false, nil
	}
	limit := time.Now().Add(c.t.maxRetryAfter()) // the fleet holds the call no longer
	var (
		turn     Turn
		held     fleetHold // the wait told to an Observer
		askedFor int64     // the Epoch the turn was last asked again for
	)
	for {
		now := time.Now()
		if err := c.ctx.Err(); err != nil {
			held.end(c, err)
			return true, c.abandon(err)
		}
		until := earlier(cd.Until, limit)
		if deadline, ok := c.ctx.Deadline(); ok && until.After(deadline) {
			err := c.cooldownError(cd.Cause, until.Sub(now))
			held.end(c, err)
			return true, c.refuse(err)
		}
		own := c.ownCooldown()
		hold := Hold{Floor: max(own.Sub(now), 0), MaxWait: max(limit.Sub(now), 1), Spent: c.fleetSpent, Requeue: turn,
			Admitted: c.bankNews()}
		next, err := co.Reserve(c.ctx, c.host, hold)
		c.fleetSpent += time.Since(now)
		if err != nil {
			held.end(c, nil)
			if rest := until.Sub(now); rest > 0 { // the local queue takes over
				c.hostStateAt(now).holdForFleet(until, rest, cd.Cause)
			}
			return false, nil
		}
		turn = next
		wait := min(turn.Wait, time.Until(limit))
		if deadline, ok := c.ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			c.giveBack(turn)
			err := c.cooldownError(cd.Cause, turn.Wait)
			held.end(c, err)
			return true, c.refuse(err)
		}
		// The member's own part of the first wave's burst goes at the end
		// of the pause, without a turn (see burstAt); the pause may grow
		// while the call waits for it. While the first wave is still
		// counted, the call looks again once the count is over
		// (paceStartGap at most) rather than waking at the end of the
		// pause for nothing.
		due := time.Now().Add(wait)
		for turn.ID != 0 {
			at, counting, ok := c.burstAt(cd.Until)
			if !ok || !at.Before(due) {
				break
			}
			look := at
			if counting {
				look = earlier(at, time.Now().Add(paceStartGap))
			}
			if err := held.sleep(c, time.Until(look), time.Until(due)); err != nil {
				c.giveBack(turn)
				return true, c.abandon(err)
			}
			if look.Before(at) {
				continue
			}
			if c.takeBurst(at) {
				c.giveBack(turn)
				held.end(c, nil)
				return true, nil
			}
		}
		wait = max(time.Until(due), 0)
		if err := held.sleep(c, wait, wait); err != nil {
			c.giveBack(turn)
			return true, c.abandon(err)
		}
		if turn.ID == 0 || !time.Now().Before(limit) {
			break // the fleet held the call as long as the Transport allows
		}
		// Queue again only for a cooldown that came after the turn was
		// given: a new one in the fleet (a larger Epoch), or a longer one
		// of the Transport's own (the floor the turn was asked with has
		// moved). A turn asked again for an Epoch that still comes from
		// an older one says that the fleet's store does not know the
		// Epoch the Coordinator told (a garbled value, a store restarted):
		// asking again would change nothing, and the local queue holds
		// the call to the cooldown the Coordinator knows, as after a
		// failed Reserve.
		latest, ok := co.Cooldown(c.host)
		newer := ok && latest.Epoch > turn.Epoch
		if newer && latest.Epoch == askedFor {
			held.end(c, nil)
			now := time.Now()
			if until := earlier(latest.Until, limit); until.After(now) {
				c.hostStateAt(now).holdForFleet(until, until.Sub(now), latest.Cause)
			}
			return false, nil
		}
		if !newer && !c.ownCooldown().After(own) {
			break
		}
		if newer {
			askedFor = latest.Epoch
		}
		if ok {
			cd = latest
		}
		cd.Until = later(cd.Until, c.ownCooldown())
	}
	held.end(c, nil)
	// The Transport's own cooldown is a floor: a turn that came before
	// its end (a Coordinator that ignored Hold.Floor) leaves the call to
	// the local queue.
	if c.ownCooldown().After(time.Now()) {
		return false, nil
	}
	c.fleetTurn = turn
	c.fleetPaced(turn.Gap)
	return true, nil
}

// giveBack gives turn back to the Transport's Coordinator, unless it
// reserved nothing (ID 0).
func (c *call) giveBack(turn Turn) {
	if turn.ID != 0 {
		c.t.Coordinator.Cancel(c.host, turn)
	}
}

// A fleetHold is a call's hold in a fleet's queue as its Observer is
// told of it: one wait of kind "fleet" from its first sleep to its end,
// however many sleeps it takes. Its zero value is a hold not started.
type fleetHold struct {
	began time.Time // when the wait was told started
	on    bool      // the wait is told started and not yet ended
}

// sleep sleeps d or until c's context ends, and returns the context's
// error, which ends the wait; the first sleep starts the wait, told as
// expected to last expect.
func (h *fleetHold) sleep(c *call, d, expect time.Duration) error {
	if !h.on {
		h.began, h.on = c.waitStarted(fleetWait, expect), true
	}
	err := sleep(c.ctx, d)
	if err != nil {
		h.end(c, err)
	}
	return err
}

// end ends the wait, if one is started, with err, what cut it short (nil
// when the call is let go).
func (h *fleetHold) end(c *call, err error) {
	if h.on {
		c.waitEnded(fleetWait, h.began, err)
		h.on = false
	}
}

// fleetPaced tells the Transport's Observer, if any, of the fleet's pace
// gap that the call was let go at (0: the fleet did not pace it), when it
// is news: see hostState.fleetPaceAt. The host gets a state, which is
// kept while the pace is told, so that its end is told too (call.lost).
func (c *call) fleetPaced(gap time.Duration) {
	if c.t.Observer == nil || gap <= 0 && c.state == nil {
		return
	}
	now := time.Now()
	c.paceChanged(c.hostStateAt(now).fleetPaceAt(now, gap))
}

// bankNews returns how many successes of its host's first wave the
// Transport counted since it last told its Coordinator (Hold.Admitted),
// and counts them told.
func (c *call) bankNews() int {
	if c.state == nil {
		return 0
	}
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	return c.state.pace.bankNews()
}

// burstAt reports whether the Transport's own pace of the call's host may
// have part of a fleet's burst to let go (pace.go: successes of the first
// wave it counted, or its count still runs: counting), and when (at): at
// the end of its own cooldown, or of the fleet's, until, when that is
// later. A fleet does not see the first
// wave's successes, of which each member sees its part; each member lets
// its part go at once at the end of the pause that engaged the pace, and
// the fleet's first turn comes one gap later (redisfleet). After a later
// pause, the fleet's turns are all there is.
//
// Only a call held while the pause runs takes part, and only right at
// its end (within paceStartGap, before the fleet's first turn).
func (c *call) burstAt(until time.Time) (at time.Time, counting, ok bool) {
	own := c.ownCooldown()
	if c.state == nil {
		return time.Time{}, false, false
	}
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	now := time.Now()
	p := &c.state.pace
	at = later(own, until)
	return at, p.countingAt(now), now.Before(at) && p.mayShareAt(now)
}

// takeBurst lets the call go as one of its Transport's part of the
// fleet's burst, if one is left and the pause ended at at (burstAt) less
// than paceStartGap ago, and reports whether it did. The request carries
// no ticket: the fleet's turns, not the Transport's own pace, learn from
// answers while the fleet holds the host.
func (c *call) takeBurst(at time.Time) bool {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	return !now.Before(at) && now.Before(at.Add(paceStartGap)) && s.pace.takeShareAt(now)
}

// joinFleetWave is called on a success answered to a request that went
// without a turn, neither the fleet's nor its own pace's: when its
// Coordinator knows that the host cools down, the request was part of
// the first wave that another member's pushback ended, and the host's
// pace is engaged here too (as a pushback of its own would, counting the
// first wave from this success on: hostState.joinFleetWaveAt), so that a
// member whose requests were all admitted tells its part of the burst
// and lets it go at the end of the pause. Over HTTP/2, where each
// member's requests reach the limiter together on one connection, a few
// members get the whole burst and meet no 429 of their own.
//
// It costs one Coordinator.Cooldown lookup, which must not block or
// allocate.
func (c *call) joinFleetWave() {
	cd, ok := c.t.Coordinator.Cooldown(c.host)
	if !ok {
		return
	}
	now := time.Now()
	if rest := cd.Until.Sub(now); rest > 0 {
		c.paceChanged(c.hostStateAt(now).joinFleetWaveAt(now, cd.Until, rest, cd.Cause))
	}
}

// ownCooldown is the end of the Transport's own cooldown of the call's
// host: zero when none ever ran.
func (c *call) ownCooldown() time.Time {
	if h := c.t.table(); c.state == nil && h != nil {
		c.state = h.hold(c.host, h.lookup(c.host))
	}
	if c.state == nil {
		return time.Time{}
	}
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	return c.state.until
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
