// This file holds the Lua scripts that keep one host's fleet state in
// Redis. Each touches only the keys of one host, which share the hash tag
// {prefix:host}, so they run in Redis Cluster too. Instants are the Redis
// server's clock in microseconds (TIME); what goes back to the members are
// durations from the server's now, never instants, so no two machines'
// clocks are compared.
//
// The state of a host is a hash {prefix:host}:cooldown with the fields
// until (end of the cooldown), next (the next free release slot), gap
// (between two slots, µs) and cause (429 or 503), plus a sorted set
// {prefix:host}:holes of slots given back before their time. Both expire
// a second after the later of until and next.

package redisfleet

import "github.com/redis/go-redis/v9"

// luaPrelude reads the server's clock and the host's state, dropping a
// value of the wrong type and reading a garbled or out-of-range field as
// absent. ARGV[1] is the cap, in µs, of how far ahead an instant may lie.
const luaPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cap = tonumber(ARGV[1])
local function num(v, lo, hi)
  v = tonumber(v)
  if v == nil or v ~= v or v < lo or v > hi then return nil end
  return math.floor(v)
end
local k = KEYS[1]
local kind = redis.call('TYPE', k)['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', k) end
local untilv = num(redis.call('HGET', k, 'until'), 0, now + cap) or 0
local nextv = num(redis.call('HGET', k, 'next'), 0, now + cap) or 0
local gapv = num(redis.call('HGET', k, 'gap'), 0, 1000000)
local causev = num(redis.call('HGET', k, 'cause'), 0, 999) or 0
`

// announceScript records a cooldown of ARGV[2] µs from now, paced by a gap
// of ARGV[3] µs (or the host's current gap, if longer), cause ARGV[4],
// unless one already ends later, and publishes it on channel ARGV[5] as "pause gap cause host" (ARGV[6] is
// the host). It returns {changed, end of the cooldown in server ms, server
// now in ms}.
var announceScript = redis.NewScript(luaPrelude + `
local pause = tonumber(ARGV[2])
local newUntil = now + pause
if newUntil <= untilv then return {0, math.floor(untilv / 1000), math.floor(now / 1000)} end
local gap = math.max(tonumber(ARGV[3]), gapv or 0)
if untilv > 0 and untilv <= now and nextv > now then
  gap = math.min(gap * 2, 1000000) -- a request released by the queue drew this answer: go slower
end
redis.call('HSET', k, 'until', newUntil, 'gap', gap, 'cause', ARGV[4])
if nextv > 0 then redis.call('HSET', k, 'next', nextv) end
redis.call('PEXPIREAT', k, math.floor(math.max(newUntil, nextv) / 1000) + 1000)
redis.call('PUBLISH', ARGV[5], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[6])
return {1, math.floor(newUntil / 1000), math.floor(now / 1000)}
`)

// reserveScript hands out the next release slot of a host: the earliest
// slot given back that is still ahead (not before the cooldown's end),
// else the later of the cooldown's end, the next free slot and now; the
// next free slot then moves one gap on. KEYS[2] is the holes set.
//
// ARGV[2] is what the member itself knows of the cooldown, in µs from now
// (0: nothing): when the store knows less (a lost announcement, a
// restarted Redis), the cooldown is recorded and published as in
// announceScript, with gap ARGV[3], cause ARGV[4], channel ARGV[6], host
// ARGV[7]. ARGV[5] is the longest wait the caller accepts in µs (-1: no
// limit): a slot further away is not taken.
//
// It returns {taken (0 or 1), wait µs, slot (server µs), rest of the
// cooldown µs, rest of the queue µs, recorded (0 or 1)}.
var reserveScript = redis.NewScript(luaPrelude + `
local hk = KEYS[2]
local hkind = redis.call('TYPE', hk)['ok']
if hkind ~= 'zset' and hkind ~= 'none' then redis.call('DEL', hk) end
local hint = tonumber(ARGV[2])
local recorded = 0
if hint > 0 and now + hint > untilv + 10000 then
  untilv = now + hint
  gapv = math.max(tonumber(ARGV[3]), gapv or 0)
  redis.call('HSET', k, 'until', untilv, 'gap', gapv, 'cause', ARGV[4])
  redis.call('PUBLISH', ARGV[6], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[7])
  recorded = 1
end
if gapv == nil then
  gapv = tonumber(ARGV[3])
  redis.call('HSET', k, 'gap', gapv)
end
redis.call('ZREMRANGEBYSCORE', hk, '-inf', now)
local slot = math.max(untilv, nextv, now)
local hole = nil
local h = redis.call('ZRANGEBYSCORE', hk, math.max(untilv, now), '+inf', 'LIMIT', 0, 1)
if h[1] then
  local hv = tonumber(h[1])
  if hv and hv < slot then slot = hv; hole = h[1] end
end
local wait = slot - now
local maxWait = tonumber(ARGV[5])
if maxWait >= 0 and wait > maxWait then
  return {0, wait, slot, untilv - now, math.max(untilv, nextv) - now, recorded}
end
if hole then
  redis.call('ZREM', hk, hole)
else
  nextv = slot + gapv
  redis.call('HSET', k, 'next', nextv)
end
local tail = math.max(untilv, nextv)
local expire = math.floor(tail / 1000) + 1000
redis.call('PEXPIREAT', k, expire)
if redis.call('EXISTS', hk) == 1 then redis.call('PEXPIREAT', hk, expire) end
return {1, wait, slot, untilv - now, tail - now, recorded}
`)

// cancelScript gives back slot ARGV[2] (server µs): the last slot handed
// out moves the next free slot back onto it; an earlier one becomes a hole
// that the next reservation takes (at most ARGV[3] holes are kept). A slot
// that has passed, or that was never handed out, changes nothing. It
// returns 1 for a rollback, 2 for a hole, 0 otherwise.
var cancelScript = redis.NewScript(luaPrelude + `
local hk = KEYS[2]
local slot = tonumber(ARGV[2])
if kind ~= 'hash' or gapv == nil or slot == nil or slot <= now or slot >= nextv then return 0 end
if slot + gapv == nextv then
  redis.call('HSET', k, 'next', slot)
  return 1
end
local hkind = redis.call('TYPE', hk)['ok']
if hkind ~= 'zset' and hkind ~= 'none' then redis.call('DEL', hk) end
redis.call('ZADD', hk, slot, slot)
redis.call('ZREMRANGEBYRANK', hk, 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIREAT', hk, math.floor(math.max(untilv, nextv) / 1000) + 1000)
return 2
`)

// peekScript reads a host's state for a member that (re)subscribes:
// {rest of the cooldown µs, rest of the queue µs, gap µs, cause}, or an
// empty array when there is none.
var peekScript = redis.NewScript(luaPrelude + `
if kind ~= 'hash' then return {} end
return {untilv - now, math.max(untilv, nextv) - now, gapv or 0, causev}
`)
