// This file holds the Lua scripts that keep one host's fleet state in
// Redis. Each touches only the keys of one host, which share the hash tag
// {prefix:host}, so they run in Redis Cluster too. Instants are the Redis
// server's clock in microseconds (TIME); what goes back to the members are
// durations from the server's now, never instants, so no two machines'
// clocks are compared.
//
// The state of a host is a hash {prefix:host}:cooldown with the fields
//
//	until  end of the cooldown
//	next   the next free release slot
//	gap    between two slots (µs)
//	cause  429 or 503
//	epoch  the cooldown's epoch: the server's clock when it started, or
//	       one more than the previous epoch if that is later
//	maps   the moves of the last 32 new cooldowns, oldest first, each
//	       "from epoch,to epoch,first pending slot,new start,old gap,new gap;":
//	       the turns of the old epoch at or after the first pending slot
//	       now start at the new start, spaced by the new gap
//
// plus a sorted set {prefix:host}:holes of slots given back before their
// time. Both expire a second after the later of until and next.
//
// Two functions decide everything about the queue: pace (the gap after a
// new cooldown) and cool (a new cooldown: a new epoch, the pending turns
// moved behind it in their order, one announcement on the channel).

package redisfleet

import "github.com/redis/go-redis/v9"

// luaPrelude reads the server's clock and the host's state, dropping a
// value of the wrong type and reading a garbled or out-of-range field as
// absent, and defines pace, cool and remap. ARGV[1] is the bound, in µs,
// of how far ahead an instant may lie.
const luaPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lim = tonumber(ARGV[1])
local function num(v, lo, hi)
  v = tonumber(v)
  if v == nil or v ~= v or v < lo or v > hi then return nil end
  return math.floor(v)
end
local k, hk = KEYS[1], KEYS[2]
local kind = redis.call('TYPE', k)['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', k); kind = 'none' end
local hkind = redis.call('TYPE', hk)['ok']
if hkind ~= 'zset' and hkind ~= 'none' then redis.call('DEL', hk) end
local f = redis.call('HMGET', k, 'until', 'next', 'gap', 'cause', 'epoch', 'maps')
local untilv = num(f[1], 0, now + lim) or 0
local nextv = num(f[2], 0, now + lim) or 0
local gapv = num(f[3], 1, 1000000)
local causev = num(f[4], 0, 999) or 0
local epochv = num(f[5], 0, now + lim) or 0
local maps = {}
if type(f[6]) == 'string' then
  for a, b, c, d, e, g in string.gmatch(f[6], '(%d+),(%d+),(%d+),(%d+),(%d+),(%d+);') do
    local m = {tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(e), tonumber(g)}
    if m[5] >= 1 and m[6] >= 1 and #maps < 32 then maps[#maps + 1] = m end
  end
end

local function expire()
  local at = math.floor(math.max(untilv, nextv) / 1000) + 1000
  redis.call('PEXPIREAT', k, at)
  if redis.call('EXISTS', hk) == 1 then redis.call('PEXPIREAT', hk, at) end
end

-- remap is where a turn given in epoch e at slot s goes now: through
-- the moves of every new cooldown since e, in order; nil when its place
-- is gone (it was not pending at one of them, or e is too old).
local function remap(s, e)
  for i = 1, #maps do
    local m = maps[i]
    if m[1] == e then
      if s < m[3] then return nil end
      s, e = m[4] + math.floor((s - m[3]) * m[6] / m[5]), m[2]
    end
  end
  if e == epochv then return s end
  return nil
end

-- pace is the gap of the queue after a new cooldown, from the gap a
-- member proposes: the queue's own if longer, doubled when a request the
-- queue released drew the cooldown (the pace was faster than the API
-- takes). It is the one place where a gap is decided.
local function pace(proposed)
  local g = math.max(proposed, gapv or 1)
  if untilv > 0 and untilv <= now and nextv > now then g = g * 2 end
  return math.min(g, 1000000)
end

-- cool records a new cooldown of pause µs from now, started by cause: a
-- new epoch; the turns still pending in the queue move, in their order,
-- to the start of the new one, spaced by the new gap (so do the holes
-- among them); every member is told on channel as
-- "epoch pause gap cause host".
local function cool(pause, proposed, cause, channel, host)
  local newUntil = now + pause
  local g = pace(proposed)
  local g0 = gapv or g
  local from = math.max(now, untilv)
  local newNext = newUntil
  if nextv > from then newNext = newUntil + math.floor((nextv - from) * g / g0) end
  local holes = redis.call('ZRANGEBYSCORE', hk, from, '+inf')
  redis.call('DEL', hk)
  for _, h in ipairs(holes) do
    local s = tonumber(h)
    if s then
      local moved = newUntil + math.floor((s - from) * g / g0)
      redis.call('ZADD', hk, moved, moved)
    end
  end
  local epoch = math.max(now, epochv + 1)
  maps[#maps + 1] = {epochv, epoch, from, newUntil, g0, g}
  local kept = {}
  for i = math.max(1, #maps - 31), #maps do
    local m = maps[i]
    kept[#kept + 1] = string.format('%d,%d,%d,%d,%d,%d;', m[1], m[2], m[3], m[4], m[5], m[6])
  end
  redis.call('HSET', k, 'until', newUntil, 'next', newNext, 'gap', g, 'cause', cause, 'epoch', epoch,
    'maps', table.concat(kept))
  untilv, nextv, gapv, causev, epochv = newUntil, newNext, g, cause, epoch
  redis.call('PUBLISH', channel, string.format('%d %d %d %d %s', epoch, pause, g, cause, host))
  expire()
end
`

// announceScript records a cooldown of ARGV[2] µs from now (cause
// ARGV[4], proposed gap ARGV[3]) unless the one known ends at most
// ARGV[7] µs before it; ARGV[5] is the channel, ARGV[6] the host. It
// returns {changed (0 or 1), epoch, rest of the cooldown µs, rest of the
// queue µs, gap µs, cause, server now in ms}.
var announceScript = redis.NewScript(luaPrelude + `
local pause = tonumber(ARGV[2])
local changed = 0
if now + pause > untilv + tonumber(ARGV[7]) then
  cool(pause, tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6])
  changed = 1
end
return {changed, epochv, untilv - now, math.max(untilv, nextv) - now, gapv or 0, causev, math.floor(now / 1000)}
`)

// reserveScript hands out a turn of a host's release queue: for a turn
// asked again after a new cooldown (ARGV[4] slot, ARGV[5] epoch), its
// moved place; else the earliest slot given back that is still ahead,
// or the later of the cooldown's end, the next free slot and now; never
// before now plus the floor ARGV[2]. The next free slot then moves one
// gap on. ARGV[3] is the longest wait the caller accepts in µs (-1: no
// limit): a slot further away is not taken.
//
// When the host has no state at all (it expired, or Redis lost it), a
// cooldown of ARGV[6] µs that the member knows (0: none) is recorded
// again as by announceScript, with gap ARGV[7], cause ARGV[8], channel
// ARGV[9] and host ARGV[10]; a state Redis holds is never moved by what a
// member knows.
//
// It returns {taken (0 or 1), wait µs, slot (server µs), epoch, rest of
// the cooldown µs, rest of the queue µs, gap µs, cause, recorded (0 or
// 1)}.
var reserveScript = redis.NewScript(luaPrelude + `
local floor = now + tonumber(ARGV[2])
local maxWait = tonumber(ARGV[3])
local restore = tonumber(ARGV[6])
local recorded = 0
if kind == 'none' and restore > 0 then
  cool(restore, tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], ARGV[10])
  recorded = 1
end
if gapv == nil then
  gapv = tonumber(ARGV[7])
  redis.call('HSET', k, 'gap', gapv)
end
redis.call('ZREMRANGEBYSCORE', hk, '-inf', now)
local slot, how = nil, 'next'
local rq, rqe = tonumber(ARGV[4]), tonumber(ARGV[5])
if rq > 0 then
  local moved = remap(rq, rqe)
  if moved and moved > now then
    if moved >= floor then slot, how = moved, 'moved' else redis.call('ZADD', hk, moved, moved) end
  end
end
if not slot then
  slot = math.max(untilv, nextv, now, floor)
  local h = redis.call('ZRANGEBYSCORE', hk, math.max(untilv, now, floor), '+inf', 'LIMIT', 0, 1)
  if h[1] then
    local hv = tonumber(h[1])
    if hv and hv < slot then slot, how = hv, h[1] end
  end
end
local wait = slot - now
local taken = 1
if maxWait >= 0 and wait > maxWait then
  taken = 0
  if how == 'moved' then redis.call('ZADD', hk, slot, slot) end -- its place goes to the next caller
elseif how == 'next' then
  nextv = slot + gapv
  redis.call('HSET', k, 'next', nextv)
elseif how ~= 'moved' then
  redis.call('ZREM', hk, how)
end
expire()
return {taken, wait, slot, epochv, untilv - now, math.max(untilv, nextv) - now, gapv, causev, recorded}
`)

// cancelScript gives back the turn at slot ARGV[2] (server µs) of epoch
// ARGV[3]: the last slot handed out moves the next free slot back onto
// it; an earlier one becomes a hole that the next reservation takes (at
// most ARGV[4] holes are kept). A slot that has passed, that was never
// handed out, or whose place is gone, changes nothing. It returns 1 for
// a rollback, 2 for a hole, 0 otherwise.
var cancelScript = redis.NewScript(luaPrelude + `
if kind ~= 'hash' or gapv == nil then return 0 end
local slot = remap(tonumber(ARGV[2]), tonumber(ARGV[3]))
if slot == nil or slot <= now or slot >= nextv then return 0 end
if slot + gapv == nextv then
  redis.call('HSET', k, 'next', slot)
  return 1
end
redis.call('ZADD', hk, slot, slot)
redis.call('ZREMRANGEBYRANK', hk, 0, -tonumber(ARGV[4]) - 1)
expire()
return 2
`)

// peekScript reads a host's state for a member that (re)subscribes:
// {rest of the cooldown µs, rest of the queue µs, gap µs, cause, epoch},
// or an empty array when there is none.
var peekScript = redis.NewScript(luaPrelude + `
if kind ~= 'hash' then return {} end
return {untilv - now, math.max(untilv, nextv) - now, gapv or 0, causev, epochv}
`)
