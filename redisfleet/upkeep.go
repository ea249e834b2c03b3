// This file holds the Fleet's background goroutine: the work a request
// hands off instead of waiting on Redis (announcements, turns given back,
// the index of hosts), and the pings that tell when Redis, marked down,
// answers again.

package redisfleet

import (
	"context"
	"errors"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/redis/go-redis/v9"
)

// A job is work done off the request's path, for host: announce news
// (when its until is set), give cancel back (when its ID is set), or
// record host in the index for index from now.
type job struct {
	host   string
	news   state
	cancel neuracraft.Turn
	index  time.Duration
}

var errBusy = errors.New("redisfleet: too much background work waiting, dropped")

// enqueue hands j to the background goroutine (announcements first), and
// reports whether it did: not without Redis, while it is down or when
// maxJobs wait already. A turn not given back costs at most one gap, a
// host missing from the index only a late member's knowledge of it, an
// announcement that does not reach Redis is sent again by the member's
// next one.
func (f *Fleet) enqueue(j job) bool {
	if f.rdb == nil || f.down.Load() || f.ctx.Err() != nil {
		return false
	}
	jobs := f.jobs
	if !j.news.until.IsZero() {
		jobs = f.news
	}
	select {
	case jobs <- j:
		return true
	default:
		f.report(errBusy)
		return false
	}
}

// upkeep runs until Close: it does the jobs, and while Redis is down it
// pings it until it answers within OpTimeout: first OpTimeout after the
// failure (a Redis that was only slow for a moment is back soon), then
// twice as long after each ping left unanswered, up to RetryInterval.
func (f *Fleet) upkeep() {
	defer f.wg.Done()
	probe := time.NewTimer(f.opt.RetryInterval)
	probe.Stop()
	defer probe.Stop()
	var interval time.Duration
	for {
		select { // announcements first: the other members wait for them
		case j := <-f.news:
			f.do(j)
			continue
		default:
		}
		select {
		case <-f.ctx.Done():
			return
		case j := <-f.news:
			f.do(j)
		case j := <-f.jobs:
			f.do(j)
		case <-f.wake:
			interval = min(f.opt.OpTimeout, f.opt.RetryInterval)
			probe.Reset(interval)
		case <-probe.C:
			_, err := run(f, f.ctx, f.opt.OpTimeout, func(ctx context.Context) (string, error) {
				return f.rdb.Ping(ctx).Result()
			})
			if err == nil {
				f.answered.Store(time.Now().UnixNano())
				f.down.Store(false)
			} else if f.ctx.Err() == nil {
				interval = min(2*interval, f.opt.RetryInterval)
				probe.Reset(interval)
			}
		}
	}
}

// do does j, within OpTimeout.
func (f *Fleet) do(j job) {
	if !j.news.until.IsZero() {
		f.announce(j.host, j.news)
		return
	}
	if j.cancel.ID > 0 {
		_, _ = do(f, f.ctx, "cancel", 0, func(ctx context.Context) (int64, error) {
			return cancelScript.Run(ctx, f.rdb, f.keys(j.host), f.args(j.cancel.ID, maxHoles)...).Int64()
		})
		return
	}
	f.addToIndex(j.host, j.index)
}

// indexScript records the host ARGV[1] in the index KEYS[1] until ARGV[2]
// µs from the server's now; entries that ended more than a second ago,
// and all but the latest ARGV[3], are dropped, and the index expires
// ARGV[4] ms after its last change.
var indexScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('TYPE', KEYS[1])['ok'] ~= 'zset' then redis.call('DEL', KEYS[1]) end
redis.call('ZADD', KEYS[1], 'GT', now + math.floor(tonumber(ARGV[2]) / 1000), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1000)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`)

// addToIndex records host in the fleet's index of hosts, which members
// read when they (re)subscribe, for rest from Redis's now, and reports
// whether Redis took it.
func (f *Fleet) addToIndex(host string, rest time.Duration) bool {
	_, err := do(f, f.ctx, "index", 0, func(ctx context.Context) (int64, error) {
		return indexScript.Run(ctx, f.rdb, []string{f.index}, host, micros(min(rest, maxPause)), maxHosts,
			(maxPause + time.Minute).Milliseconds()).Int64()
	})
	return err == nil
}
