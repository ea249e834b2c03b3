package redisfleet

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDoSlowIsNotDown: a command that gets no answer within OpTimeout
// marks Redis down (the requests leave it alone until it answers a ping),
// unless Redis answered another command of the Fleet meanwhile: then it
// is slow for this one (a busy machine, a connection being set up), and
// the other requests still use it.
func TestDoSlowIsNotDown(t *testing.T) {
	noLeaks(t)
	s := startRedis(t)
	hang := func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
	answer := func(context.Context) (int, error) { return 1, nil }

	// A Fleet on s without its goroutines, so that nothing else talks to
	// Redis.
	bare := func(t *testing.T, opts Options) *Fleet {
		f := &Fleet{rdb: s.client(t), opt: opts, wake: make(chan struct{}, 1)}
		f.opt.OpTimeout = DefaultOpTimeout
		f.ctx, f.cancel = context.WithCancel(context.Background())
		t.Cleanup(func() { f.Close() })
		return f
	}
	t.Run("nothing answered meanwhile: down", func(t *testing.T) {
		f := bare(t, Options{})
		_, err := do(f, context.Background(), "test", 0, hang)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.True(t, f.down.Load(), "Redis not marked down")
	})
	t.Run("another command answered meanwhile: slow, not down", func(t *testing.T) {
		var log errLog
		f := bare(t, Options{OnError: log.add})
		done := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			_, err := do(f, context.Background(), "test", 0, func(ctx context.Context) (int, error) {
				close(started)
				return hang(ctx)
			})
			done <- err
		}()
		<-started
		_, err := do(f, context.Background(), "test", 0, answer)
		require.NoError(t, err)
		require.ErrorIs(t, <-done, context.DeadlineExceeded)
		assert.False(t, f.down.Load(), "Redis marked down although it answered")
		assert.Equal(t, 1, log.count(context.DeadlineExceeded), "the slow command is reported")
	})
}
