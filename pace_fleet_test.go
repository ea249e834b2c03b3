package neuracraft

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// updatePaceSchedules rewrites testdata/pace_schedules.json from the
// pacer: go test -run TestPaceSchedules -update-pace-schedules .
var updatePaceSchedules = flag.Bool("update-pace-schedules", false, "rewrite testdata/pace_schedules.json from the pacer")

// paceSchedulesFile holds the schedules of the pace for a few scenarios,
// as the pacer gives them. redisfleet's TestFleetPaceSchedules reads the
// same file and checks that its Lua scripts give the same numbers: one
// algorithm in two places, pinned to one schedule.
const paceSchedulesFile = "testdata/pace_schedules.json"

// A paceScenario is a pace engaged by a pushback (a pause of
// paceScenarioPause), then phases of requests let go at the pace, each
// answered at once: with success, except the last request of a phase that
// ends with a cut, answered 429 (with the same pause), after which the
// next phase starts at the end of the new pause.
type paceScenario struct {
	Name string `json:"name"`
	// Bank is how many successes of the first wave were counted (a
	// fleet's members tell them with Hold.Admitted); the requests of the
	// burst they make are not in Turns (a fleet's members let them go
	// without turns).
	Bank   int         `json:"bank,omitempty"`
	Phases []pacePhase `json:"phases"`
}

type pacePhase struct {
	// Turns are the requests let go: [µs from the end of the pause, the
	// gap of their ticket in ns]. Instants are whole microseconds (each
	// gap is truncated to the microsecond, as in Redis's clock).
	Turns [][2]int64 `json:"turns"`
	// Cut is the index in Turns of the request answered 429, or -1.
	Cut int `json:"cut"`
}

// paceScenarioPause is the pause of every pushback of the scenarios.
const paceScenarioPause = 100 * time.Millisecond

// paceSchedule runs a scenario through a pacer: phases[i] lets go n
// requests at the pace and, when cut >= 0, answers the request of that
// index 429. With a bank, that many successes of the first wave are
// counted first, and the requests of the burst, let go before those at
// the pace after each pause, are answered at once and left out.
func paceSchedule(name string, bank int, phases ...[2]int) paceScenario {
	var p pacer
	p.pushbackAt(t0, ticket{})
	for i := range bank {
		p.successAt(t0.Add(time.Duration(i)*time.Microsecond), ticket{})
	}
	start := t0.Add(paceScenarioPause)
	sc := paceScenario{Name: name, Bank: bank}
	for _, ph := range phases {
		n, cut := ph[0], ph[1]
		phase := pacePhase{Cut: cut}
		at := start
		for p.burst > 0 && p.bgap == paceMinGap { // the bank's burst
			p.successAt(at, p.letGoAt(at))
			at = at.Add(p.gapAt(at).Truncate(time.Microsecond))
		}
		first := at
		for i := range n {
			tk := p.letGoAt(at)
			phase.Turns = append(phase.Turns, [2]int64{at.Sub(first).Microseconds(), int64(tk.gap)})
			if i == cut {
				p.pushbackAt(at, tk)
				start = at.Add(paceScenarioPause)
				break
			}
			p.successAt(at, tk)
			at = at.Add(p.gapAt(at).Truncate(time.Microsecond))
		}
		sc.Phases = append(sc.Phases, phase)
	}
	return sc
}

// paceScenarios are the scenarios of the file: the slow start alone; a
// cut in the slow start (at the first gap under 20 ms, a strict limiter
// of 50 a second), then a cut at the pace that held; a cut past the slow
// start's end (a burst spent), then the burst it leaves; after a first
// wave that showed a burst, the linear slow start, a cut in it, and the
// pace that holds.
func paceScenarios() []paceScenario {
	return []paceScenario{
		paceSchedule("slow start", 0, [2]int{60, -1}),
		paceSchedule("cut in the slow start, then at the pace that held", 0, [2]int{11, 10}, [2]int{12, 6}, [2]int{12, -1}),
		paceSchedule("cut past the slow start's end", 0, [2]int{40, 39}, [2]int{40, -1}),
		paceSchedule("after a burst: the linear slow start, a cut in it", 21, [2]int{80, 79}, [2]int{20, -1}),
	}
}

// TestPaceSchedules checks the pacer against testdata/pace_schedules.json,
// which redisfleet's scripts are checked against too.
func TestPaceSchedules(t *testing.T) {
	got := paceScenarios()
	if *updatePaceSchedules {
		b, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(paceSchedulesFile, append(b, '\n'), 0o644))
	}
	b, err := os.ReadFile(paceSchedulesFile)
	require.NoError(t, err, "go test -run TestPaceSchedules -update-pace-schedules . writes it")
	var want []paceScenario
	require.NoError(t, json.Unmarshal(b, &want))
	require.Empty(t, cmp.Diff(want, got), "the pacer's schedules differ from %s (what redisfleet is held to)", paceSchedulesFile)

	// What the scenarios are meant to show.
	cut := got[1].Phases
	require.Equal(t, int64(16384*time.Microsecond), cut[0].Turns[10][1], "the first gap under 20 ms is cut")
	require.Equal(t, int64(24576*time.Microsecond), cut[1].Turns[0][1], "half as long again")
	require.Equal(t, int64(27648*time.Microsecond), cut[2].Turns[0][1], "then an eighth longer")
	burst := got[2].Phases
	require.Less(t, burst[0].Turns[39][1], int64(paceStartEnd), "the last cut is past the slow start's end")
	require.Equal(t, int64(paceStartEnd/time.Microsecond), burst[1].Turns[1][0], "a burst left: the next phase starts at 6.25 ms")
	lin := got[3].Phases
	require.Equal(t, int64(paceLinStart), lin[0].Turns[0][1], "the linear slow start starts at 25 a second")
	failed := lin[0].Turns[79][1]
	require.Equal(t, failed+failed/5, lin[1].Turns[0][1], "the cut: a fifth longer")
}
