// Tests of the retry hooks (hooks.go): the events OnRetry is given, what
// LogRetries logs of them, and RetryEvent's context.

package neuracraft

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

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

func TestTransportOnRetryAndLogRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, nil))
		var events []RetryEvent
		base := &scriptBase{steps: []step{answer(503, "Retry-After", "1"), answer(500), answer(200)}}
		tr := &Transport{Base: base, rand: half, OnRetry: func(ev RetryEvent) {
			events = append(events, ev)
			LogRetries(logger)(ev)
		}}
		req, err := http.NewRequest("GET", "https://u:pw_secret@api.neuracraft.com/v1/runs/r1?api_key=k_secret&limit=5", nil)
		require.NoError(t, err)
		req.Header.Set("X-API-Key", "nc_secret")
		req.Header.Set("X-Request-ID", "req_1")
		_, err = tr.RoundTrip(req)
		require.NoError(t, err)
		require.Len(t, events, 2)
		assert.Equal(t, []int{1, 2}, []int{events[0].Attempt, events[1].Attempt})
		assert.Equal(t, []time.Duration{time.Second, 500 * time.Millisecond}, []time.Duration{events[0].Delay, events[1].Delay})
		assert.ErrorIs(t, events[0].Err, ErrUnavailable)
		assert.ErrorIs(t, events[1].Err, ErrInternal)
		assert.Equal(t, "https://api.neuracraft.com/v1/runs/r1?api_key=REDACTED&limit=5", events[0].URL)
		out := buf.String()
		assert.Contains(t, out, `"request_id":"req_1"`)
		assert.Contains(t, out, `"attempt":2`)
		for _, secret := range []string{"pw_secret", "k_secret", "nc_secret"} {
			assert.NotContains(t, out, secret)
		}
	})
}
