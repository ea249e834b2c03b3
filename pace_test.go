package neuracraft

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// paceSteps lets go and answers n requests at p's pace, at one instant
// each from at on, spaced by the pace; it returns the instant after the
// last.
func paceSteps(t *testing.T, p *pacer, at time.Time, n int) time.Time {
	t.Helper()
	for range n {
		tk := p.letGoAt(at)
		require.NotZero(t, tk.gap, "not paced at %v", at.Sub(t0))
		p.successAt(at, tk)
		at = at.Add(tk.gap)
	}
	return at
}

func TestPacerZeroValue(t *testing.T) {
	t.Parallel()
	var p pacer
	assert.Zero(t, p.gapAt(t0))
	assert.Zero(t, p.letGoAt(t0), "a request let go without a pace carries no ticket")
	assert.False(t, p.successAt(t0, ticket{}))
	assert.False(t, p.successAt(t0, ticket{epoch: 0, gap: time.Millisecond}), "an answer to no pace changes nothing")
}

func TestPacerEngagesAndEnds(t *testing.T) {
	t.Parallel()
	var p pacer
	require.True(t, p.pushbackAt(t0, ticket{}), "the first pushback engages the pace")
	assert.Equal(t, 50*time.Millisecond, p.gapAt(t0))
	assert.Equal(t, ticket{epoch: 1, gap: 50 * time.Millisecond}, p.letGoAt(at(time.Second)))

	assert.False(t, p.pushbackAt(at(10*time.Second), ticket{}), "pushback to a request not paced changes nothing...")
	assert.Equal(t, 50*time.Millisecond, p.gapAt(at(39*time.Second)), "...but keeps the pace 30 s longer")
	assert.Zero(t, p.gapAt(at(40*time.Second)), "30 s after the last pushback, the pace ends")
	assert.Zero(t, p.letGoAt(at(40*time.Second)))

	require.True(t, p.pushbackAt(at(41*time.Second), ticket{epoch: 1, gap: 50 * time.Millisecond}))
	assert.Equal(t, 50*time.Millisecond, p.gapAt(at(41*time.Second)), "engaged afresh, slow start again")
	assert.Equal(t, uint32(2), p.letGoAt(at(42*time.Second)).epoch)
}

func TestPacerSlowStart(t *testing.T) {
	t.Parallel()
	var p pacer
	p.pushbackAt(t0, ticket{})
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	var gaps []time.Duration
	now := at(time.Second)
	for range 9 {
		gaps = append(gaps, p.gap)
		now = paceSteps(t, &p, now, 2)
	}
	assert.Equal(t, []time.Duration{ms(50), ms(40), ms(32), ms(25.6), ms(20.48), ms(16.384), ms(13.1072),
		ms(10.48576), ms(8.388608)}, gaps, "a fifth shorter every 2 successes")
	assert.Equal(t, ms(6.710887), p.gap)
	assert.True(t, p.start)
	now = paceSteps(t, &p, now, 2)
	assert.Equal(t, ms(5.36871), p.gap)
	assert.False(t, p.start, "past 6.25 ms (160 a second), the slow start ends")

	// An answer to a request let go at an earlier, slower gap says
	// nothing of this one.
	assert.False(t, p.successAt(now, ticket{epoch: p.epoch, gap: ms(6.710887)}))
	assert.Equal(t, ms(5.36871), p.gap)
}

func TestPacerPushbackInSlowStart(t *testing.T) {
	t.Parallel()
	var p pacer
	p.pushbackAt(t0, ticket{})
	now := paceSteps(t, &p, at(time.Second), 10) // 50, 50, 40, 40, 32, 32, 25.6, 25.6, 20.48, 20.48
	failed := p.letGoAt(now)
	require.Equal(t, 16384*time.Microsecond, failed.gap)
	late := p.letGoAt(now.Add(failed.gap)) // in flight when the 429 comes

	require.True(t, p.pushbackAt(now.Add(time.Millisecond), failed))
	assert.Equal(t, 24576*time.Microsecond, p.gapAt(now), "half as long again as the gap that failed (16.384 ms), longer than the last that held (20.48 ms)")
	assert.False(t, p.start)
	assert.False(t, p.pushbackAt(now.Add(2*time.Millisecond), late), "the 429 of a request let go before the change is no news")
	assert.Equal(t, 24576*time.Microsecond, p.gapAt(now))

	// It holds for 10 s: no faster, however many successes.
	paceSteps(t, &p, now.Add(time.Second), 100)
	assert.Equal(t, 24576*time.Microsecond, p.gap)

	// Then it probes: a twentieth shorter every 8 successes.
	now = paceSteps(t, &p, at(12*time.Second), 8)
	assert.Equal(t, 23347200*time.Nanosecond, p.gap)
	paceSteps(t, &p, now, 8)
	assert.Equal(t, 22179840*time.Nanosecond, p.gap)
}

func TestPacerPushbackAtAPaceThatHeld(t *testing.T) {
	t.Parallel()
	p := pacer{gap: 24 * time.Millisecond, good: 20 * time.Millisecond, epoch: 3, last: t0, held: at(paceHold)}
	now := paceSteps(t, &p, t0, 40)
	failed := p.letGoAt(now)
	require.True(t, p.pushbackAt(now, failed))
	assert.Equal(t, 27*time.Millisecond, p.gapAt(now), "an eighth longer")
	assert.Equal(t, uint32(4), p.epoch)
	assert.Equal(t, now.Add(paceHold), p.held, "and no faster for 10 s")
}

func TestPacerPushbackPastSlowStart(t *testing.T) {
	t.Parallel()
	// A burst spent: past the slow start's end, the host admitted 60
	// requests in 600 ms (10 ms each) before the 429.
	p := pacer{gap: 5 * time.Millisecond, good: 6 * time.Millisecond, epoch: 2, last: t0, held: at(paceHold)}
	from := at(time.Second)
	var tk ticket
	for i := range 60 {
		tk = p.letGoAt(from.Add(time.Duration(i) * 10 * time.Millisecond))
		p.successAt(from.Add(time.Duration(i)*10*time.Millisecond), tk)
	}
	failed := p.letGoAt(from.Add(600 * time.Millisecond))
	require.Equal(t, 5*time.Millisecond, failed.gap)
	require.True(t, p.pushbackAt(from.Add(600*time.Millisecond), failed))
	assert.Equal(t, 14*time.Millisecond, p.gap, "five sevenths of the rate admitted")
	assert.Equal(t, 18, p.burst, "what it admitted beyond that: 60 requests, where 14 ms apart would have been 42")

	// After the pause, those 18 go at 6.25 ms, then the pace holds.
	next := from.Add(2 * time.Second)
	for i := range 18 {
		assert.Equal(t, paceStartEnd, p.gapAt(next), "burst request %d", i)
		p.letGoAt(next)
	}
	assert.Equal(t, 14*time.Millisecond, p.gapAt(next))
}

func TestPacerBounds(t *testing.T) {
	t.Parallel()
	t.Run("no slower than 1 s", func(t *testing.T) {
		p := pacer{gap: 900 * time.Millisecond, epoch: 1, last: t0}
		require.True(t, p.pushbackAt(t0, ticket{epoch: 1, gap: 900 * time.Millisecond}))
		assert.Equal(t, time.Second, p.gapAt(t0))
	})
	t.Run("past 1000 a second, the pace ends", func(t *testing.T) {
		p := pacer{gap: 1040 * time.Microsecond, epoch: 1, last: t0}
		paceSteps(t, &p, t0, 7)
		assert.Equal(t, 1040*time.Microsecond, p.gapAt(t0))
		tk := p.letGoAt(t0)
		require.True(t, p.successAt(t0, tk))
		assert.Zero(t, p.gapAt(t0))
		assert.Equal(t, uint32(2), p.epoch, "answers to requests let go before are no news")
	})
}

func TestPacerQuota(t *testing.T) {
	t.Parallel()
	var p pacer
	p.quotaAt(200*time.Millisecond, at(time.Second))
	assert.Equal(t, 200*time.Millisecond, p.gapAt(t0), "a quota paces a host that met no pushback")
	assert.Zero(t, p.letGoAt(t0), "but its requests carry no ticket: the learnt pace is not engaged")
	assert.Zero(t, p.gapAt(at(time.Second)), "until the reset")

	p.pushbackAt(t0, ticket{})
	p.quotaAt(20*time.Millisecond, at(time.Second))
	assert.Equal(t, 50*time.Millisecond, p.gapAt(t0), "the slower of the two")
	p.quotaAt(0, at(time.Hour))
	assert.Equal(t, 50*time.Millisecond, p.gapAt(t0))
	assert.Zero(t, p.quotaUntil, "a zero gap clears the quota")
}

// TestPaceNews: the host's pace methods return its pace each time its
// gap or its end changes, once, with how long it lasts: the first
// pushback, a later one that puts the end further, a quota slower than
// the pace and its end; an answer that changes neither is no news, and
// the first look after the pace ran out says it ended.
func TestPaceNews(t *testing.T) {
	t.Parallel()
	s := newHostState("h", defaultHostConfig())
	sec := time.Second
	type news = paceNews
	got := []news{
		s.pushbackAt(at(0), ticket{}, 0),
		s.pushbackAt(at(sec), ticket{}, 0), // not let go at the pace: the same gap, a later end
		s.pacedAnswerAt(at(2*sec), ticket{epoch: 1, gap: 50 * time.Millisecond}),
		s.quotaAt(at(2*sec), 200*time.Millisecond, at(62*sec)),
		s.quotaAt(at(3*sec), 0, time.Time{}),
		s.pacedAnswerAt(at(31*sec), ticket{}),
		s.pacedAnswerAt(at(32*sec), ticket{}),
	}
	assert.Equal(t, []news{
		{changed: true, gap: 50 * time.Millisecond, lasts: 30 * sec},
		{changed: true, gap: 50 * time.Millisecond, lasts: 30 * sec},
		{gap: 50 * time.Millisecond},
		{changed: true, gap: 200 * time.Millisecond, lasts: 60 * sec},
		{changed: true, gap: 50 * time.Millisecond, lasts: 28 * sec},
		{changed: true},
		{},
	}, got)
}

func TestPacerEndAt(t *testing.T) {
	t.Parallel()
	var p pacer
	assert.Zero(t, p.endAt(t0), "no pace, no end")
	p.quotaAt(time.Second, at(10*time.Second))
	assert.Equal(t, at(10*time.Second), p.endAt(t0), "the quota's end")
	p.pushbackAt(t0, ticket{})
	assert.Equal(t, at(30*time.Second), p.endAt(t0), "the later of the quota's and the learnt pace's")
	assert.Equal(t, at(30*time.Second), p.endAt(at(20*time.Second)), "the learnt pace's, once the quota ended")
	assert.Zero(t, p.endAt(at(30*time.Second)))
}

// TestPacerBank: the successes of the first wave answered during the
// cooldown, each within 6.25 ms of the last (or of the pushback), make
// the bank: from 3 on, they go first after the pause, 1 ms apart, with
// tickets of their own, and the slow start is linear.
func TestPacerBank(t *testing.T) {
	t.Parallel()
	var p pacer
	p.pushbackAt(t0, ticket{})
	for i := range 21 {
		p.successAt(at(time.Duration(i+1)*time.Millisecond), ticket{})
	}
	p.successAt(at(40*time.Millisecond), ticket{}) // 19 ms after the last: the run, and the count, are over
	p.successAt(at(41*time.Millisecond), ticket{})
	require.Equal(t, 21, p.bank)
	assert.Equal(t, time.Millisecond, p.gapAt(at(time.Second)), "the bank goes 1 ms apart")

	now := at(time.Second)
	for i := range 21 {
		tk := p.letGoAt(now)
		require.Equal(t, ticket{epoch: 1, gap: time.Millisecond}, tk, "bank request %d", i)
		assert.False(t, p.successAt(now, tk), "a success of the bank says nothing of the pace")
		now = now.Add(p.gapAt(now))
	}
	assert.Equal(t, 40*time.Millisecond, p.gapAt(now), "then the linear slow start, from 25 a second")
	p.successAt(now, ticket{}) // a late answer of the first wave
	assert.Equal(t, 21, p.bank, "once requests went, the count is over")

	for n := 1; n < paceMinBank; n++ {
		t.Run(fmt.Sprintf("%d successes are no burst", n), func(t *testing.T) {
			var p pacer
			p.pushbackAt(t0, ticket{})
			for i := range n {
				p.successAt(at(time.Duration(i+1)*time.Millisecond), ticket{})
			}
			assert.Equal(t, n, p.bank)
			assert.False(t, p.lin)
			assert.Equal(t, ticket{epoch: 1, gap: 50 * time.Millisecond}, p.letGoAt(at(time.Second)), "the doubling slow start, no bank")
		})
	}
	t.Run("answers that trickle in", func(t *testing.T) {
		var p pacer
		p.pushbackAt(t0, ticket{})
		for i := range 25 {
			p.successAt(at(time.Duration(i+1)*20*time.Millisecond), ticket{}) // a slow server, 50 a second
		}
		assert.Equal(t, 1, p.bank, "20 ms apart: one run of one, not a burst")
		assert.False(t, p.lin)
	})
	t.Run("engaged by a fleet's pause, told from a burst on", func(t *testing.T) {
		var p pacer
		p.pushbackAt(t0, ticket{})
		p.quiet = true // hostState.joinFleetWaveAt
		p.successAt(at(time.Millisecond), ticket{})
		p.successAt(at(2*time.Millisecond), ticket{})
		assert.Zero(t, p.bankNews(), "two successes: nothing told")
		p.successAt(at(3*time.Millisecond), ticket{})
		assert.Equal(t, 3, p.bankNews(), "three: all told")
		p.successAt(at(4*time.Millisecond), ticket{})
		assert.Equal(t, 1, p.bankNews(), "then each once")
		assert.Zero(t, p.bankNews())
	})
	t.Run("bounded", func(t *testing.T) {
		var p pacer
		p.pushbackAt(t0, ticket{})
		for i := range 5000 {
			p.successAt(at(time.Duration(i)*time.Microsecond), ticket{})
		}
		assert.Equal(t, paceMaxBank, p.bank)
	})
}

// bankedPacer is a pacer engaged at t0 whose first wave counted n
// successes.
func bankedPacer(n int) *pacer {
	var p pacer
	p.pushbackAt(t0, ticket{})
	for i := range n {
		p.successAt(at(time.Duration(i)*100*time.Microsecond), ticket{})
	}
	return &p
}

// TestPacerLinearSlowStart: with a bank, the slow start starts at 25 a
// second, and each success at rate r makes the rate sqrt(r² + 2·18):
// about 18 a second more every second, up to 160 a second; answers to requests let go at a slower gap count too (a server
// slower than the pace answers late), those of the bank and of another
// epoch do not.
func TestPacerLinearSlowStart(t *testing.T) {
	t.Parallel()
	p := bankedPacer(3)
	now := at(time.Second)
	for range 3 {
		p.letGoAt(now) // the bank
	}
	rate := func() float64 { return float64(time.Second) / float64(p.gap) }
	for n := 1; n <= 30; n++ {
		now = paceSteps(t, p, now, 1)
		require.InEpsilon(t, math.Sqrt(625+36*float64(n)), rate(), 1e-6, "after %d successes", n)
	}
	assert.InDelta(t, 0.9, now.Sub(at(time.Second)).Seconds(), 0.03, "41.3 a second in about (41.3 - 25) / 18 s")
	gap := p.gap
	assert.True(t, p.successAt(now, ticket{epoch: p.epoch, gap: 50 * time.Millisecond}), "a late answer at a slower gap")
	assert.Equal(t, climbStep(gap), p.gap)
	assert.False(t, p.successAt(now, ticket{epoch: p.epoch - 1, gap: 50 * time.Millisecond}), "another epoch's answer")
	assert.False(t, p.successAt(now, ticket{epoch: p.epoch, gap: time.Millisecond}), "the bank's")
	for p.start {
		now = paceSteps(t, p, now, 1)
	}
	assert.Less(t, p.gap, paceStartEnd, "past 6.25 ms (160 a second), the slow start ends")
	assert.InDelta(t, 7.5, now.Sub(at(time.Second)).Seconds(), 0.1, "(160 - 25) / 18 s")
}

// TestPacerLinearCut: with a bank, a pushback to a request let go at the
// pace makes the pace the gap that failed, a fifth longer, and holds it;
// after every pause the bank goes first; a pushback to a request of the
// bank makes the bank what the host admitted of it.
func TestPacerLinearCut(t *testing.T) {
	t.Parallel()
	p := bankedPacer(5)
	now := at(time.Second)
	for range 5 {
		tk := p.letGoAt(now)
		p.successAt(now, tk)
	}
	now = paceSteps(t, p, now, 20)
	failed := p.letGoAt(now)
	late := p.letGoAt(now.Add(failed.gap))
	require.True(t, p.pushbackAt(now, failed))
	assert.Equal(t, failed.gap+failed.gap/5, p.gap, "a fifth longer than the gap that failed")
	assert.False(t, p.start)
	assert.Equal(t, now.Add(paceHold), p.held)
	assert.False(t, p.pushbackAt(now, late), "the 429 of a request let go before the cut is no news")

	// After the pause: the bank first, then the pace.
	now = now.Add(time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, p.letGoAt(now).gap)
	}
	ms := time.Millisecond
	assert.Equal(t, []time.Duration{ms, ms, ms, ms, ms, failed.gap + failed.gap/5}, got)

	// A 429 to the bank's third request, after two of it succeeded: the
	// bank is 2.
	p.pushbackAt(now, ticket{epoch: p.epoch, gap: p.gap}) // cut again: a new epoch
	now = now.Add(time.Second)
	gap := p.gap
	for range 2 {
		tk := p.letGoAt(now)
		p.successAt(now, tk)
	}
	tk := p.letGoAt(now)
	require.Equal(t, time.Millisecond, tk.gap)
	require.True(t, p.pushbackAt(now, tk))
	assert.Equal(t, 2, p.bank)
	assert.Equal(t, gap, p.gap, "the pace is not what failed")
	assert.Equal(t, time.Millisecond, p.gapAt(now), "the next pause's bank: 2")
}
