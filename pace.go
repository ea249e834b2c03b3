// This file holds the adaptive pace of a host: once a 429 or 503 has
// asked for a pause, requests to the host go no faster than a pace learnt
// from the answers to the requests sent at it. The pace a server's
// rate-limit fields ask for is read in ratelimit.go.

package neuracraft

import (
	"math"
	"time"

	"github.com/neuracraft/neuracraft-go/internal/limits"
)

// The constants of the pace, chosen with the simulated limiters of
// pace_sim_test.go and measured against nginx in bench/ (docs/retries.md
// has the figures). Every 429 that the pace draws costs a whole
// Retry-After to every request held, so they aim at finding a limiter's
// rate with one overshoot, and at staying under it afterwards. Their
// values live in internal/limits, which redisfleet hands to its scripts:
// a fleet paces by the same numbers.
const (
	// paceStartGap is the pace of the first requests after the cooldown
	// that engaged it: 20 a second, which most limiters that asked for a
	// pause admit.
	paceStartGap = limits.PaceStartGap

	// paceStartWins is how many requests must succeed in a row at a gap
	// before the slow start shortens it by a fifth: the rate doubles
	// about every 6 successes, and the first gap that draws pushback is
	// at most 1.25 times shorter than one that succeeded twice.
	paceStartWins = limits.PaceStartWins

	// paceStartEnd ends the slow start (160 requests a second): a limiter
	// still admitting that much since its pause is spending a burst it
	// saved, which says nothing of its rate until it is spent.
	paceStartEnd = limits.PaceStartEnd

	// paceHold is how long after pushback the pace does not speed up: a
	// gap that failed is not tried again soon. Past it, the pace probes
	// faster slowly: a twentieth shorter every paceProbeWins successes.
	paceHold      = limits.PaceHold
	paceProbeWins = limits.PaceProbeWins

	// paceQuiet is how long the pace lasts after the last pushback: 30
	// seconds, thirty times the usual Retry-After and longer than the
	// windows of the limiters that send one (a second to a minute), so
	// that a steady load at the limit does not fall back to full speed
	// and into a new cooldown. Then the host is paced no more, and its
	// state can be forgotten.
	paceQuiet = limits.PaceQuiet

	// paceMinGap and paceMaxGap bound the learnt pace: past 1000
	// requests a second it holds nothing back (the pace ends), and a
	// limiter that asked for a pause admits at least one request a
	// second once it is over. The bank's burst goes paceMinGap apart.
	paceMinGap = limits.PaceMinGap
	paceMaxGap = limits.PaceMaxGap

	// paceLinStart and paceClimb are the linear slow start, once the
	// first wave showed a burst: from 25 requests a second, 18 more for
	// every second of successes (each success at rate r makes it
	// sqrt(r² + 2·18)), so that the pace passes the limiter's rate
	// slowly and spends the burst it saves no sooner than a queue of a
	// few seconds takes to drain (against nginx at 50 a second with a
	// burst of 20: it passes 50 about 1.4 s after the pause, and spends
	// the 20 about 1.5 s later). paceCut is what a pushback to a request
	// let go at it does: the gap that failed, a fifth longer.
	paceClimb    = limits.PaceClimb
	paceCut      = limits.PaceCut
	paceLinStart = limits.PaceLinStartGap

	// paceMinBank is the least bank that makes a burst: the first wave
	// must have admitted at least 3. Two are weak evidence: a strict
	// limiter admits one request every gap of its rate, and on a busy
	// machine the answers to two of a first wave sent over longer than
	// that can come back together (in the nginx lab, 20 ms apart at
	// nginx, a few ms apart at the pacer, in about one run in five); the
	// bank of 2 then draws a 429 at once after the pause, and a whole
	// pause more, where a true bank of 2 saves a gap. paceMaxBank bounds
	// it: at most 1000 requests go at once after a pause.
	paceMinBank = limits.PaceMinBank
	paceMaxBank = 1000
)

// A pacer is the pace of one host: the least time between two requests
// let go to it. It is engaged by the first pushback (a 429 or 503 whose
// Retry-After is honoured) and costs nothing before.
//
// It starts at paceStartGap once the cooldown ends and, while requests let
// go at it succeed, shortens the gap by a fifth every paceStartWins
// successes (a slow start), up to paceStartEnd. Past that it probes
// faster slowly. A pushback to a request let go at the pace ends the
// climb (every request's answer names the gap it was let go at, so
// answers to requests let go before the last change are not taken twice):
//
//   - met in the slow start, it is a limiter's rate: the pace goes back to
//     the last gap that succeeded, and at least half as long again as the
//     gap that failed;
//   - met past the slow start's end, it is a burst spent: the pace goes to
//     five sevenths of the rate the host admitted since the pause, and
//     what it admitted beyond that may go at paceStartEnd after the next
//     pause;
//   - met at a pace that held, the pace slows by an eighth: enough when
//     the limit moved or a late packet made two requests arrive too close,
//     and small enough that processes that share a limiter without knowing
//     of each other do not slow down far below it.
//
// Then it holds for paceHold before probing faster again, and it ends
// paceQuiet after the last pushback.
//
// The bank. While the cooldown that engaged the pace runs, the pacer
// counts the first wave: the successes answered to requests sent before
// the pushback, in one run, the first within paceStartGap of the
// pushback and each next within paceStartEnd of the one before it, so
// that answers that trickle in from a slow server are not taken for a
// burst. That many requests the host admitted at once. When they are
// paceMinBank or more, the host has a burst, and after every pause that
// many go first, paceMinGap apart (the bank); the slow start then climbs
// linearly (paceLinStart, paceClimb) instead of doubling, so as not to
// spend the burst the limiter saves while the pace is under its rate,
// and a pushback to a request let go at the pace slows it by paceCut (a
// pushback to a request of the bank makes the bank what it admitted). A
// success answered before the pushback is not counted (a healthy host's
// calls do nothing but one atomic load): behind a gateway that refuses
// at once and proxies what it admits, the first wave's successes come
// after its first refusal; a limiter that answers both as fast is paced
// as above.
//
// Its methods take the time as a parameter; it is not safe for concurrent
// use (hostState guards it with its mutex). Its zero value is a pace not
// engaged.
type pacer struct {
	gap   time.Duration // the pace; 0 while not engaged
	start bool          // in the slow start
	wins  int           // successes in a row at gap
	good  time.Duration // the last gap the slow start left after paceStartWins successes; 0 if none
	epoch uint32        // bumped by every pushback that changes the pace
	last  time.Time     // the last pushback: the pace ends paceQuiet after it
	held  time.Time     // no probing faster before this
	from  time.Time     // when the first request of this epoch was let go
	won   int           // successes in this epoch
	burst int           // requests that may go at burstGap before the pace holds again
	bgap  time.Duration // the burst's gap: paceStartEnd, or paceMinGap for the bank's
	bank  int           // the first wave's successes counted
	count bool          // the first wave's successes are counted
	tally time.Time     // the last of them counted
	lin   bool          // the bank makes a burst: the slow start is linear, and every pause lets the bank go first
	told  int           // the part of the bank told to a Coordinator (bankNews)
	quiet bool          // engaged by a fleet's pause (joinFleetWaveAt): a bank under paceMinBank is not told
	share int           // the part of the bank not yet let go without a fleet turn (call.takeBurst)

	// The pace that a server's rate-limit fields ask for (ratelimit.go),
	// until quotaUntil; the slower of it and the learnt pace holds.
	quotaGap   time.Duration
	quotaUntil time.Time
}

// A ticket is what a request let go at a pace carries, so that its answer
// can be told apart from the answers to requests let go at an earlier
// pace, and from those of the bank (whose gap is paceMinGap, shorter than
// the pace's). Its zero value is that of a request that was not paced.
type ticket struct {
	epoch uint32
	gap   time.Duration
}

// onAt reports whether the learnt pace holds at now.
func (p *pacer) onAt(now time.Time) bool {
	return p.gap > 0 && now.Sub(p.last) < paceQuiet
}

// gapAt is the least time between two requests let go at now: the slower
// of the learnt pace (or the burst's gap while a burst is left) and the
// quota's, or 0 when there is neither.
func (p *pacer) gapAt(now time.Time) time.Duration { return p.gapOf(now, p.burst > 0) }

// gapOf is gapAt, with the burst's gap only when burst is true.
func (p *pacer) gapOf(now time.Time, burst bool) time.Duration {
	var g time.Duration
	if p.onAt(now) {
		g = p.gap
		if burst {
			g = min(g, p.bgap)
		}
	}
	if now.Before(p.quotaUntil) {
		g = max(g, p.quotaGap)
	}
	return g
}

// letGoAt records that a request is let go at now, and returns its
// ticket.
func (p *pacer) letGoAt(now time.Time) ticket {
	if !p.onAt(now) {
		return ticket{}
	}
	if p.from.IsZero() {
		p.from, p.count = now, false
	}
	if p.burst > 0 {
		p.burst--
		if p.lin {
			return ticket{epoch: p.epoch, gap: min(p.gap, paceMinGap)}
		}
	}
	return ticket{epoch: p.epoch, gap: p.gap}
}

// pushbackAt records at now a 429 or 503 whose Retry-After is honoured,
// answered to a request that carried t, and reports whether the pace
// changed.
func (p *pacer) pushbackAt(now time.Time, t ticket) bool {
	if !p.onAt(now) {
		*p = pacer{gap: paceStartGap, start: true, epoch: p.epoch + 1, last: now, count: true, tally: now,
			quotaGap: p.quotaGap, quotaUntil: p.quotaUntil}
		return true
	}
	p.last = now
	if t.gap == 0 || t.epoch != p.epoch {
		return false // not let go at this pace: its change is made
	}
	if p.lin {
		if t.gap < p.gap { // a request of the bank: the host admits fewer at once
			p.bank = p.won
		} else {
			p.gap = min(max(t.gap+t.gap/paceCut, p.gap), paceMaxGap)
			p.start = false
			p.held = now.Add(paceHold)
		}
		p.wins, p.won, p.from = 0, 0, time.Time{}
		p.burst, p.bgap = p.bank, paceMinGap
		p.epoch++
		return true
	}
	var next time.Duration
	p.burst = 0
	switch {
	case p.start:
		next = max(t.gap+t.gap/2, p.good)
	case t.gap < p.good && p.won > 0:
		admitted := now.Sub(p.from) / time.Duration(p.won) // the mean gap the host admitted
		next = max(t.gap+t.gap/4, admitted+2*admitted/5)
		p.burst, p.bgap = max(p.won-int(now.Sub(p.from)/next), 0), paceStartEnd
	default:
		next = t.gap + t.gap/8
	}
	p.gap = min(max(next, p.gap), paceMaxGap)
	p.start, p.wins, p.won, p.from = false, 0, 0, time.Time{}
	p.epoch++
	p.held = now.Add(paceHold)
	return true
}

// successAt records at now an answer that is not pushback (a success, or
// a failure that says nothing of the pace) to a request that carried t,
// and reports whether the pace changed.
func (p *pacer) successAt(now time.Time, t ticket) bool {
	if t.gap == 0 {
		p.countAt(now)
		return false
	}
	if !p.onAt(now) || t.epoch != p.epoch {
		return false
	}
	p.won++
	if p.start && p.lin {
		if t.gap < p.gap {
			return false // a request of the bank: nothing learnt of the pace
		}
		p.gap = climbStep(p.gap)
		p.start = p.gap >= paceStartEnd
		return true
	}
	if t.gap != p.gap {
		return false // let go at a slower gap: nothing learnt of this one
	}
	p.wins++
	switch {
	case p.start && p.wins >= paceStartWins:
		p.good = p.gap
		p.gap -= p.gap / 5
		p.start = p.gap >= paceStartEnd
	case !p.start && p.wins >= paceProbeWins && !now.Before(p.held):
		p.gap -= p.gap / 20
	default:
		return false
	}
	p.wins = 0
	if p.gap < paceMinGap { // fast enough to hold nothing back
		*p = pacer{epoch: p.epoch + 1, quotaGap: p.quotaGap, quotaUntil: p.quotaUntil}
	}
	return true
}

// climbStep is the linear slow start's gap after one more success at gap:
// the rate r = 1/gap becomes sqrt(r² + 2·paceClimb). It is computed in
// float64 with the operations redisfleet's scripts make, in the same
// order, each product rounded on its own (no fused multiply-add), so
// that a fleet's pace is the same to the nanosecond.
func climbStep(gap time.Duration) time.Duration {
	r := float64(time.Second) / float64(gap)
	return time.Duration(math.Floor(float64(time.Second) / math.Sqrt(float64(r*r)+float64(2*paceClimb))))
}

// countAt counts at now a success of the first wave into the bank while
// the count runs (countingAt): one run of them, the first within
// paceStartGap of the pushback, each next within paceStartEnd of the one
// before it, at most paceMaxBank. From paceMinBank on, the bank is a
// burst: it goes first, and the slow start is linear.
func (p *pacer) countAt(now time.Time) {
	if !p.countingAt(now) || p.bank >= paceMaxBank {
		p.count = false
		return
	}
	p.bank++
	p.share++
	p.tally = now
	if p.bank >= paceMinBank {
		if !p.lin && p.start {
			p.gap = min(p.gap, paceLinStart)
		}
		p.lin, p.burst, p.bgap = true, p.bank, paceMinGap
	}
}

// bankNews returns the successes counted into the bank since it was last
// called, and counts them told.
func (p *pacer) bankNews() int {
	if p.quiet && p.bank < paceMinBank {
		return 0
	}
	d := max(p.bank-p.told, 0)
	p.told = p.bank
	return d
}

// countingAt reports whether the count of the first wave still runs at
// now: nothing counted yet within paceStartGap of the pushback, or the
// last success counted within paceStartEnd.
func (p *pacer) countingAt(now time.Time) bool {
	limit := paceStartEnd
	if p.bank == 0 {
		limit = paceStartGap
	}
	return p.count && p.onAt(now) && now.Sub(p.tally) <= limit
}

// mayShareAt reports whether the Transport's part of a fleet's burst
// may go at the end of the pause (call.takeBurst): part of it is left
// (its count made a burst), or the first wave is still counted.
func (p *pacer) mayShareAt(now time.Time) bool {
	return p.onAt(now) && (p.share > 0 && p.lin || p.countingAt(now))
}

// takeShareAt lets a request of the Transport's part of a fleet's burst
// go at now, if one is left, and reports whether it did: the count of
// the first wave is over. The caller checks that the pause just ended.
func (p *pacer) takeShareAt(now time.Time) bool {
	if !p.onAt(now) || p.share <= 0 || !p.lin {
		return false
	}
	p.share--
	p.count = false
	return true
}

// quotaAt records that the server's rate-limit fields ask for requests
// gap apart until until; a zero gap ends the quota's pace.
func (p *pacer) quotaAt(gap time.Duration, until time.Time) {
	if gap <= 0 {
		gap, until = 0, time.Time{}
	}
	p.quotaGap, p.quotaUntil = gap, until
}

// endAt is when the pace in force at now ends if nothing changes it:
// paceQuiet after the last pushback, or the quota's end, whichever is
// later; zero when there is no pace at now.
func (p *pacer) endAt(now time.Time) time.Time {
	var end time.Time
	if p.onAt(now) {
		end = p.last.Add(paceQuiet)
	}
	if p.quotaGap > 0 && now.Before(p.quotaUntil) {
		end = later(end, p.quotaUntil)
	}
	return end
}

// The hostState's side of the pace: the one place where it changes is
// pushbackAt and pacedAnswerAt, and quotaAt for the quota's part;
// fleetPaceAt records a fleet's pace that stands for it. Each
// returns what changed, for the call to tell its Observer once the lock
// is released (call.paceChanged).

// A paceNews is a host's pace as a call tells its Observer: the gap from
// now on (0: not paced) and how long it lasts if nothing changes it. It
// is news (changed) when it differs from the last one told.
type paceNews struct {
	changed    bool
	gap, lasts time.Duration
}

// paceNewsAt returns the host's pace at now, changed when its end differs
// from the pace last returned changed, or its gap by a twentieth or more:
// each change is told once, and a linear slow start, which changes the
// gap with every success, is told every twentieth or so (about 40 times
// from 20 to 160 a second). A burst's gap is not the pace, and is not
// told. A pace that ran out needs no news (its end was told with it), but
// the next change says so. s.mu must be held.
//
// While a fleet's pace is told (fleetPaceAt), it is the host's pace: the
// requests go at the fleet's turns, not through the host's own queue, so
// the host's own pace, engaged or changed meanwhile, is no news until the
// fleet's ends.
func (s *hostState) paceNewsAt(now time.Time) paceNews {
	gap, end := s.pace.gapOf(now, false), time.Time{}
	if gap > 0 {
		end = s.pace.endAt(now)
	}
	if now.Before(s.fleetEnd) {
		gap, end = s.fleetGap, s.fleetEnd
	}
	if end.Equal(s.toldEnd) && (gap == s.toldGap || gap > 0 && s.toldGap > 0 && max(gap-s.toldGap, s.toldGap-gap) < s.toldGap/20) {
		return paceNews{gap: gap}
	}
	s.toldGap, s.toldEnd = gap, end
	return paceNews{changed: true, gap: gap, lasts: max(end.Sub(now), 0)}
}

// pacedAt reports whether the host is paced at now, by its own pace or
// by a fleet's told to an Observer: its state is then kept. s.mu must be
// held.
func (s *hostState) pacedAt(now time.Time) bool {
	return s.pace.gapAt(now) > 0 || now.Before(s.fleetEnd)
}

// gapAt is the time between two requests let go to the host at now: its
// pace while it is paced, else releaseGap of its cooldown. s.mu must be
// held.
func (s *hostState) gapAt(now time.Time) time.Duration {
	if g := s.pace.gapAt(now); g > 0 {
		return g
	}
	return releaseGap(s.span)
}

// letGoAt records that a request is let go to the host at now, and
// returns its ticket. s.mu must be held.
func (s *hostState) letGoAt(now time.Time) ticket {
	s.lastRelease = now
	return s.pace.letGoAt(now)
}

// pushbackAt records at now a 429 or 503 whose Retry-After is honoured,
// answered to a request that carried t, once its cooldown is recorded:
// the first engages the pace, a later one to a request let go at the pace
// slows it, and every one puts the pace's end further. The first request
// held goes a random part r (in [0, 1)) of the pace after the cooldown
// ends, so that processes that met the same pushback do not all send
// again at the same instant. It returns the host's pace from now on.
func (s *hostState) pushbackAt(now time.Time, t ticket, r float64) paceNews {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pace.pushbackAt(now, t)
	if gap := s.pace.gapAt(now); gap > 0 {
		s.lastRelease = later(s.lastRelease, s.until.Add(time.Duration(r*float64(gap))-gap))
	}
	return s.paceNewsAt(now)
}

// pacedAnswerAt records at now an answer that is not pushback to a
// request let go at the pace with ticket t. It returns the host's pace
// from now on.
func (s *hostState) pacedAnswerAt(now time.Time, t ticket) paceNews {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.gap == 0 && !now.Before(s.pauseEnd()) {
		s.pace.count = false // the first wave is what answers during the pause
	}
	if s.pace.successAt(now, t) {
		s.head.nudge() // the first held request looks at its turn again
	}
	return s.paceNewsAt(now)
}

// quotaAt records at now that the host's answers ask for requests gap
// apart until until (a zero gap: no longer); see call.applyQuota. It
// returns the host's pace from now on.
func (s *hostState) quotaAt(now time.Time, gap time.Duration, until time.Time) paceNews {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pace.quotaAt(gap, until)
	s.head.nudge()
	return s.paceNewsAt(now)
}

// fleetPaceAt records at now, for an Observer, that a request to the host
// was let go at a fleet turn at the fleet's pace gap, or, with a gap of
// 0, that the fleet let it go unpaced or no longer holds the host. A
// fleet's pace is told as lasting paceQuiet, the longest a pace lasts
// after the last pushback, since a Turn does not say when the fleet's
// ends: a turn at another gap tells the new one, a turn at the same gap
// tells it again only once half of that is gone (so a steady pace is
// told every 15 s at most), and a gap of 0 ends it at once (the host's
// own pace, if any, is then told). It returns the host's pace from now
// on.
func (s *hostState) fleetPaceAt(now time.Time, gap time.Duration) paceNews {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case gap <= 0:
		s.fleetGap, s.fleetEnd = 0, time.Time{}
	case gap != s.fleetGap || s.fleetEnd.Sub(now) < paceQuiet/2:
		s.fleetGap, s.fleetEnd = gap, now.Add(paceQuiet)
	}
	return s.paceNewsAt(now)
}
