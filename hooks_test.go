// Tests of RetryEvent's context and of LogRetries logging with it.

package neuracraft

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type traceIDKey struct{}

// traceHandler is a slog handler that keeps, for each record, the trace ID
// it finds in the context it is handed, as a handler that adds trace IDs
// to log lines does.
type traceHandler struct {
	slog.Handler
	ids *[]string
}

func (h traceHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	id, _ := ctx.Value(traceIDKey{}).(string)
	*h.ids = append(*h.ids, id+" "+r.Message)
	return nil
}

// TestRetryEventContext: OnRetry's event carries the request's context,
// and LogRetries logs with it, so the handler finds the trace ID.
func TestRetryEventContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.WithValue(context.Background(), traceIDKey{}, "trace-4bf92f35")
		var ids []string
		logRetry := LogRetries(slog.New(traceHandler{ids: &ids}))
		var contexts []context.Context
		tr := &Transport{Base: &scriptBase{steps: []step{answer(503), answer(500), answer(200)}}, rand: half,
			OnRetry: func(ev RetryEvent) {
				contexts = append(contexts, ev.Context())
				logRetry(ev)
			}}
		resp, err := tr.RoundTrip(newReq(t, ctx, "GET", ""))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []context.Context{ctx, ctx}, contexts, "the request's context itself")
		assert.Equal(t, []string{"trace-4bf92f35 neuracraft: retrying", "trace-4bf92f35 neuracraft: retrying"}, ids)
	})
}

// TestRetryEventContextByHand: an event built by hand has a context all
// the same, and LogRetries logs it.
func TestRetryEventContextByHand(t *testing.T) {
	assert.Equal(t, context.Background(), RetryEvent{}.Context())
	var ids []string
	LogRetries(slog.New(traceHandler{ids: &ids}))(RetryEvent{Method: "GET", Attempt: 1})
	assert.Equal(t, []string{" neuracraft: retrying"}, ids)
}
