// This file holds the Fleet's background goroutine: the work a request
// hands off instead of waiting on Redis (announcements, turns given back,
// the index of hosts), and the pings that tell when Redis, marked down,
// answers again.

package redisfleet

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/neuracraft/neuracraft-go"
	"github.com/redis/go-redis/v9"
)

// A job is work done off the request's path, for host: announce news
// (when its until is set), give cancel back (when its ID is set), or
// record host in the index with the end of its cooldown, untilMS, at the
// server's nowMS.
type job struct {
	host           string
	news           state
	cancel         neuracraft.Turn
	untilMS, nowMS int64
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
			return cancelScript.Run(ctx, f.rdb, f.keys(j.host), micros(maxPause), j.cancel.ID, j.cancel.Epoch, maxHoles).Int64()
		})
		return
	}
	f.addToIndex(j.host, j.untilMS, j.nowMS)
}

// addToIndex records host in the fleet's index of hosts, which members
// read when they (re)subscribe, with the end of its cooldown (server ms);
// entries that have ended, and all but the latest maxHosts, are dropped.
func (f *Fleet) addToIndex(host string, untilMS, nowMS int64) {
	_, _ = do(f, f.ctx, "index", 0, func(ctx context.Context) (struct{}, error) {
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAddGT(ctx, f.index, redis.Z{Score: float64(untilMS), Member: host})
			p.ZRemRangeByScore(ctx, f.index, "-inf", strconv.FormatInt(nowMS-1000, 10))
			p.ZRemRangeByRank(ctx, f.index, 0, -maxHosts-1)
			p.PExpire(ctx, f.index, maxPause+time.Minute)
			return nil
		})
		return struct{}{}, err
	})
}
