// Tests of the retry decision after a failed attempt (decideRetry,
// retry.go), a function of its input alone: each outcome, the order of the
// stop reasons, and the deadline to the nanosecond.

package neuracraft

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDecideRetry(t *testing.T) {
	t.Parallel()
	const delay = 250 * time.Millisecond
	// retryable is a retryable failure of an idempotent request, on its
	// first attempt of five, with a budget left and no deadline: retried.
	retryable := func(change func(*retryInput)) retryInput {
		in := retryInput{now: at(0), shouldRetry: true, retryable: true, delay: delay,
			tries: 1, maxTries: 5, rewindable: true, budgetLeft: true}
		if change != nil {
			change(&in)
		}
		return in
	}
	retry := retryDecision{step: retryLater, delay: delay}
	tests := []struct {
		name string
		in   retryInput
		want retryDecision
	}{
		{"retried after its delay", retryable(nil), retry},
		{"nothing a retry could help", retryable(func(in *retryInput) { in.shouldRetry, in.retryable = false, false }),
			stopWith(notRetryable)},
		{"retryable, but not for the method", retryable(func(in *retryInput) { in.shouldRetry = false }),
			stopWith(stopMethod)},
		{"retryable, but ShouldRetry declined", retryable(func(in *retryInput) { in.shouldRetry, in.customRule = false, true }),
			stopWith(stopPolicy)},
		{"ShouldRetry retries what IsRetryable would not", retryable(func(in *retryInput) { in.retryable, in.customRule = false, true }),
			retry},
		{"context done", retryable(func(in *retryInput) { in.ctxDone = true }), stopWith(stopContext)},
		{"Retry-After beyond MaxRetryAfter", retryable(func(in *retryInput) { in.tooLong = true }), stopWith(stopRetryAfter)},
		{"the last attempt", retryable(func(in *retryInput) { in.tries = 5 }), stopWith(stopAttempts)},
		{"the one before the last", retryable(func(in *retryInput) { in.tries = 4 }), retry},
		{"a body that cannot be sent again", retryable(func(in *retryInput) { in.rewindable = false }), stopWith(stopBody)},
		{"budget spent: ask the breaker, with the call's own backoff", retryable(func(in *retryInput) { in.budgetLeft = false }),
			retryDecision{step: waitForProbe, delay: delay}},
		{"budget spent: the breaker decides about the deadline",
			retryable(func(in *retryInput) { in.budgetLeft, in.deadline = false, at(time.Millisecond) }),
			retryDecision{step: waitForProbe, delay: delay}},
		{"the retry at the deadline", retryable(func(in *retryInput) { in.deadline = at(delay) }), retry},
		{"the retry a nanosecond after the deadline", retryable(func(in *retryInput) { in.deadline = at(delay - 1) }),
			stopWith(stopDeadline)},
		{"a cooldown started: wait for the turn", retryable(func(in *retryInput) { in.cooling, in.delay = true, 10*time.Second }),
			retryDecision{step: waitForTurn, delay: 10 * time.Second}},
		{"a cooldown that ends after the deadline",
			retryable(func(in *retryInput) { in.cooling, in.delay, in.deadline = true, 10*time.Second, at(5*time.Second) }),
			stopWith(stopDeadline)},

		// The first reason in the order of the stopReason constants wins.
		{"context done beats attempts exhausted", retryable(func(in *retryInput) { in.ctxDone, in.tries = true, 5 }),
			stopWith(stopContext)},
		{"Retry-After beyond MaxRetryAfter beats attempts exhausted", retryable(func(in *retryInput) { in.tooLong, in.tries = true, 5 }),
			stopWith(stopRetryAfter)},
		{"attempts exhausted beats a spent budget", retryable(func(in *retryInput) { in.tries, in.budgetLeft = 5, false }),
			stopWith(stopAttempts)},
		{"a body not replayable beats a spent budget", retryable(func(in *retryInput) { in.rewindable, in.budgetLeft = false, false }),
			stopWith(stopBody)},
		{"not retryable beats everything", retryable(func(in *retryInput) {
			in.shouldRetry, in.retryable, in.ctxDone, in.tooLong, in.tries, in.rewindable = false, false, true, true, 5, false
		}), stopWith(notRetryable)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, decideRetry(tc.in))
		})
	}
}
