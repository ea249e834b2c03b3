package neuracraft

import (
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
