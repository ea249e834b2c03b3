// This file holds the Lua scripts that keep one host's fleet state in
// Redis: its cooldown, its release queue and its pace. Each touches only
// the keys of one host, which share the hash tag {prefix:host}, so they run
// in Redis Cluster too. Instants are the Redis server's clock in
// microseconds (TIME), gaps of the pace nanoseconds; what goes back to the
// members are durations from the server's now, never instants, so no two
// machines' clocks are compared.
//
// The state of a host is a hash {prefix:host}:cooldown with the fields
//
//	until   end of the cooldown
//	next    the next free release slot
//	gap     between two slots while the host is not paced (µs)
//	cause   429 or 503
//	epoch   the cooldown's epoch: the server's clock when it started, or
//	        one more than the previous epoch if that is later
//	seq     the last turn ID handed out (IDs grow like the clock)
//	pgap, pstart, pss, pwins, pgood, plast, pheld, pburst, pep, pfrom,
//	pbank, plin
//	        the pace (see pace below): its gap (ns, 0: not paced), in the
//	        slow start, whether its epoch began in the slow start,
//	        successes in a row, the last gap the slow start left, the last
//	        pushback, no probing before, turns left at the burst's gap,
//	        the epoch of its last change, the slot of the first turn let
//	        go since, the first wave's successes the members counted, and
//	        whether they make a burst (the slow start is then linear)
//
// plus a sorted set {prefix:host}:turns of the turns handed out at the
// pace's current epoch (member the turn's ID, score its slot), a hash
// {prefix:host}:tickets of the gap each was let go at, and a sorted set
// {prefix:host}:holes of slots given back before their time. They expire
// a second after the later of until, next and the end of the pace.
//
// The pace is the root package's (pace.go), with its constants from Go
// (internal/limits): a turn handed out at the pace counts as a success at
// its slot (the success is inferred: only pushback is reported, by the
// member that met it, with the turn as its ticket), so the queue speeds
// up as the slow start would with answers that come back at once. Two
// functions change it: letGo (a turn handed out) and pushback (a 429 or
// 503 a member honoured); cool starts a new cooldown and moves the turns
// still pending behind it: in their order and spacing when the pace did
// not change, handed out afresh at the new pace when it did.
//
// The first wave's burst is the members' (the root package's
// call.waitFleet): each counts the successes of its own part of the first
// wave, tells them with its next Reserve, and lets that many of its held
// requests go at the end of the pause, without a turn. The scripts add
// the counts up (pbank): from MINBANK on, the slow start is linear, as
// the root package's is after a burst, turns handed out from then on
// climbing by climbStep; and the first turn of a pace just engaged comes
// one START gap after the pause, past the members' bursts.
//
// Instants (sixteen digits of µs) go to redis.call as numbers, which
// Redis writes exactly, or through string.format('%d'): never through
// Lua's own conversion of a number to a string, which keeps 14 digits.

package redisfleet

import "github.com/redis/go-redis/v9"

// luaPrelude reads the server's clock, the constants of the pace and the
// host's state, dropping a value of the wrong type and reading a garbled
// or out-of-range field as absent, and defines the functions of the pace
// and the queue. ARGV[1] is the bound, in µs, of how far ahead an instant
// may lie; ARGV[2..14] are the pace's constants (paceArgs); a script's own
// arguments follow (arg(1) is ARGV[15]).
const luaPrelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lim = tonumber(ARGV[1])
local START, STARTWINS, STARTEND = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local HOLD, PROBEWINS, QUIET = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local MINGAP, MAXGAP, MAXTURNS = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local CLIMB, CUT, MINBANK, LINSTART = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local function arg(i) return ARGV[14 + i] end
local function num(v, lo, hi)
  v = tonumber(v)
  if v == nil or v ~= v or v < lo or v > hi then return nil end
  return math.floor(v)
end
local k, hk, tk, gk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local kind = redis.call('TYPE', k)['ok']
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', k); kind = 'none' end
if redis.call('TYPE', hk)['ok'] ~= 'zset' then redis.call('DEL', hk) end
if redis.call('TYPE', tk)['ok'] ~= 'zset' then redis.call('DEL', tk) end
if redis.call('TYPE', gk)['ok'] ~= 'hash' then redis.call('DEL', gk) end
local f = redis.call('HMGET', k, 'until', 'next', 'gap', 'cause', 'epoch', 'seq',
  'pgap', 'pstart', 'pss', 'pwins', 'pgood', 'plast', 'pheld', 'pburst', 'pep', 'pfrom', 'pbank', 'plin')
local untilv = num(f[1], 0, now + lim) or 0
local nextv = num(f[2], 0, now + lim) or 0
local gapv = num(f[3], 1, 1000000)
local causev = num(f[4], 0, 999) or 0
local epochv = num(f[5], 0, now + lim) or 0
local seqv = num(f[6], 0, now + lim) or 0
local P = {gap = num(f[7], MINGAP, MAXGAP) or 0, start = num(f[8], 0, 1) or 0, ss = num(f[9], 0, 1) or 0,
  wins = num(f[10], 0, 1000000) or 0, good = num(f[11], 0, MAXGAP) or 0, last = num(f[12], 0, now + lim) or 0,
  held = num(f[13], 0, now + lim + HOLD) or 0, burst = num(f[14], 0, MAXTURNS) or 0, ep = num(f[15], 0, now + lim) or 0,
  from = num(f[16], 0, now + lim) or 0, bank = num(f[17], 0, 1000000) or 0, lin = num(f[18], 0, 1) or 0}
local engaged = false -- this script engaged the pace

local function save()
  -- a garbled gap reads nil, and is kept unknown (0 reads nil again) until a script that knows one
  redis.call('HSET', k, 'until', untilv, 'next', nextv, 'gap', gapv or 0, 'cause', causev, 'epoch', epochv, 'seq', seqv,
    'pgap', P.gap, 'pstart', P.start, 'pss', P.ss, 'pwins', P.wins, 'pgood', P.good, 'plast', P.last,
    'pheld', P.held, 'pburst', P.burst, 'pep', P.ep, 'pfrom', P.from, 'pbank', P.bank, 'plin', P.lin)
  local at = math.max(untilv, nextv)
  if P.gap > 0 then at = math.max(at, P.last + QUIET) end
  at = math.floor(at / 1000) + 1000
  for _, key in ipairs({k, hk, tk, gk}) do
    if redis.call('EXISTS', key) == 1 then redis.call('PEXPIREAT', key, at) end
  end
end

-- paced reports whether the pace holds at the instant at.
local function paced(at) return P.gap > 0 and at - P.last < QUIET end

-- paceRest is how long the pace holds from now, in µs (0: not paced).
local function paceRest()
  if not paced(now) then return 0 end
  return P.last + QUIET - now
end

-- spacing is the least time, in µs, from a turn at the instant at to the
-- next: the pace's gap (the slow start's end while a burst is left), or
-- the release gap when the host is not paced.
local function spacing(at)
  if not paced(at) then return gapv end
  local g = P.gap
  if P.burst > 0 then g = math.min(g, STARTEND) end
  return math.floor(g / 1000)
end

-- climbStep is the linear slow start's gap (ns) after one more success
-- at gap: the root package's climbStep, with the same float operations
-- in the same order.
local function climbStep(gap)
  local r = 1e9 / gap
  return math.floor(1e9 / math.sqrt(r * r + 2 * CLIMB))
end

-- letGo records that a turn goes at slot s, and returns the gap of its
-- ticket (ns, 0: not paced). Its answer counts as a success at s: each
-- one makes the gap climbStep of it in a linear slow start; else every
-- STARTWINS of them shorten the gap by a fifth in the slow start, every
-- PROBEWINS by a twentieth past the hold; below MINGAP the pace ends.
local function letGo(s)
  if not paced(s) then return 0 end
  if P.from == 0 then P.from = s end
  if P.burst > 0 then P.burst = P.burst - 1 end
  local g = P.gap
  P.wins = P.wins + 1
  if P.start == 1 and P.lin == 1 then
    P.gap = climbStep(P.gap)
    if P.gap < STARTEND then P.start = 0 end
    P.wins = 0
  elseif P.start == 1 and P.wins >= STARTWINS then
    P.good = P.gap
    P.gap = P.gap - math.floor(P.gap / 5)
    if P.gap < STARTEND then P.start = 0 end
    P.wins = 0
  elseif P.start == 0 and P.wins >= PROBEWINS and s >= P.held then
    P.gap = P.gap - math.floor(P.gap / 20)
    P.wins = 0
  end
  if P.gap < MINGAP then
    P = {gap = 0, start = 0, ss = 0, wins = 0, good = 0, last = 0, held = 0, burst = 0, ep = P.ep, from = 0,
      bank = 0, lin = 0}
  end
  return g
end

-- pushback records at now a 429 or 503 that a member honoured, answered
-- to the turn tid of epoch tep, let go at the gap tgap (ns; 0: not a turn
-- at the pace), and reports whether the pace changed. The first engages
-- the pace (the slow start from START); one to a turn of the pace's
-- current epoch that has come is a cut, computed at the turn's slot as
-- the root package's pacer does when the answer comes at once: after a
-- burst (lin), the gap that failed, 1/CUT longer; else in the slow
-- start, half as long again as the gap that failed; past it, a burst
-- spent (five sevenths of the rate admitted since the epoch began, the
-- rest going at STARTEND after the pause); else an eighth slower.
-- Answers to turns of an earlier epoch are no news. It is the one place
-- where a pushback changes the pace.
local function pushback(tid, tep, tgap)
  if not paced(now) then
    P = {gap = START, start = 1, ss = 1, wins = 0, good = 0, last = now, held = 0, burst = 0, ep = P.ep, from = 0,
      bank = 0, lin = 0}
    engaged = true
    return true
  end
  P.last = now
  if tgap <= 0 or tep < P.ep then return false end
  local T = tonumber(redis.call('ZSCORE', tk, tid))
  if not T or T > now then return false end
  local nxt
  P.burst = 0
  if P.lin == 1 then
    nxt = tgap + math.floor(tgap / CUT)
  elseif P.ss == 1 and tgap >= STARTEND then
    nxt = math.max(tgap + math.floor(tgap / 2), P.good)
  else
    local won = redis.call('ZCOUNT', tk, '-inf', string.format('(%d', T))
    if tgap < P.good and won > 0 and P.from > 0 and T > P.from then
      local span = (T - P.from) * 1000
      local admitted = math.floor(span / won)
      nxt = math.max(tgap + math.floor(tgap / 4), admitted + math.floor(2 * admitted / 5))
      P.burst = math.max(won - math.floor(span / nxt), 0)
    else
      nxt = tgap + math.floor(tgap / 8)
    end
  end
  P.gap = math.min(math.max(nxt, P.gap), MAXGAP)
  P.start, P.ss, P.wins, P.from = 0, 0, 0, 0
  P.held = now + HOLD
  return true
end

-- drop forgets the turns (IDs) given.
local function drop(ids)
  for i = 1, #ids, 1000 do
    local part = {unpack(ids, i, math.min(i + 999, #ids))}
    redis.call('ZREM', tk, unpack(part))
    redis.call('HDEL', gk, unpack(part))
  end
end

-- handOut records turn id at slot s and moves the next free slot behind
-- it; it returns the gap of its ticket.
local function handOut(id, s)
  local g = letGo(s)
  redis.call('ZADD', tk, s, id)
  redis.call('HSET', gk, id, g)
  nextv = math.max(nextv, s + spacing(s))
  return g
end

-- cool records a new cooldown of pause µs from now (never ending before
-- the one the fleet holds: a cut's shorter Retry-After does not shorten
-- a longer one known), started by cause: a
-- new epoch; the turns still pending move behind it, in their order: with
-- their spacing (and the holes among them) when the pace did not change,
-- else handed out afresh at the new pace, from the new cooldown's end (a
-- START gap after it when the pace was just engaged: the members'
-- bursts go first), the turns already sent forgotten. Every member is
-- told on channel as "epoch pause gap cause host pace" (gap and the rest
-- of the pace in µs).
local function cool(pause, cause, repaced, channel, host)
  local newUntil = math.max(now + pause, untilv)
  local from = math.max(now, untilv)
  local pending = redis.call('ZRANGEBYSCORE', tk, string.format('(%d', now), '+inf')
  local epoch = math.max(now, epochv + 1)
  if repaced then
    drop(redis.call('ZRANGEBYSCORE', tk, '-inf', now))
    redis.call('DEL', hk)
    nextv = newUntil
    if engaged then nextv = newUntil + math.floor(START / 1000) end
    P.ep = epoch
    for _, id in ipairs(pending) do handOut(id, nextv) end
  else
    for _, id in ipairs(pending) do
      local s = tonumber(redis.call('ZSCORE', tk, id))
      redis.call('ZADD', tk, newUntil + (s - from), id)
    end
    local holes = redis.call('ZRANGEBYSCORE', hk, from, '+inf')
    redis.call('DEL', hk)
    for _, h in ipairs(holes) do
      local s = tonumber(h)
      if s then
        local moved = newUntil + (s - from)
        redis.call('ZADD', hk, moved, moved)
      end
    end
    if nextv > from then nextv = newUntil + (nextv - from) else nextv = newUntil end
    if P.from > now then P.from = newUntil + (P.from - from) end -- the epoch's first turn had not come
  end
  untilv, causev, epochv = newUntil, cause, epoch
  local g = gapv
  if paced(now) then g = math.floor(P.gap / 1000) end
  redis.call('PUBLISH', channel, string.format('%d %d %d %d %s %d', epoch, newUntil - now, g, cause, host, paceRest()))
end

-- admit adds n successes of the first wave that a member counted, while
-- the pause that engaged the pace runs: from MINBANK on, the slow start is
-- linear, and the turns handed out so far (none has come) are handed out
-- afresh, in their order, from its first slot, at the linear slow start,
-- in a new epoch told on channel (as cool does): each member asks for its
-- turn again when its old one comes. So no turn's new slot comes before
-- its old one: the linear slow start begins faster than the doubling one
-- the old slots were spaced by, and a member would learn of an earlier
-- slot only at the old one, and send then, less than a gap after the turn
-- before it. Counts that come later change nothing: the members' parts of
-- the burst went at the end of the pause, or not at all.
local function admit(n, channel, host)
  if n <= 0 or not paced(now) or P.ss ~= 1 or now >= untilv then return end
  P.bank = math.min(P.bank + n, 1000000)
  if P.bank < MINBANK or P.lin == 1 then return end
  P.lin = 1
  local turns = redis.call('ZRANGE', tk, 0, -1, 'WITHSCORES')
  P.gap, P.start, P.wins, P.good, P.from, P.burst = math.min(START, LINSTART), 1, 0, 0, 0, 0
  redis.call('DEL', hk)
  nextv = untilv + math.floor(P.gap / 1000)
  local epoch = math.max(now, epochv + 1)
  P.ep = epoch
  for i = 1, #turns, 2 do handOut(turns[i], math.max(nextv, tonumber(turns[i + 1]) or 0)) end
  epochv = epoch
  redis.call('PUBLISH', channel, string.format('%d %d %d %d %s %d', epoch, untilv - now,
    math.floor(P.gap / 1000), causev, host, paceRest()))
end

-- gapNow is the gap a member is told (ns): the pace's, or the release
-- gap when the host is not paced.
local function gapNow()
  if paced(now) then return P.gap end
  return (gapv or 0) * 1000
end
`

// announceScript records a pushback that a member honoured: a cooldown of
// arg(1) µs from now (cause arg(3), release gap arg(2) µs when the host is
// not paced), answered to the turn arg(7) of epoch arg(8) let go at the
// gap arg(9) ns (0: not a turn at the pace). It starts a new cooldown when
// the pace changed or the one known ends more than arg(6) µs before;
// arg(4) is the channel, arg(5) the host. It returns {changed (0 or 1),
// epoch, rest of the cooldown µs, rest of the queue µs, gap ns, cause,
// server now in ms, rest of the pace µs}.
var announceScript = redis.NewScript(luaPrelude + `
local pause = tonumber(arg(1))
if gapv == nil then gapv = tonumber(arg(2)) end
local repaced = pushback(tonumber(arg(7)), tonumber(arg(8)), tonumber(arg(9)))
local changed = 0
if repaced or now + pause > untilv + tonumber(arg(6)) then
  cool(pause, tonumber(arg(3)), repaced, arg(4), arg(5))
  changed = 1
end
save()
return {changed, epochv, untilv - now, math.max(untilv, nextv) - now, gapNow(), causev, math.floor(now / 1000), paceRest()}
`)

// reserveScript hands out a turn of a host's release queue: for a turn
// asked again (ID arg(3)) whose place is still the current cooldown's
// (moved by any cooldown since, or come: the caller's own cooldown grew
// after it took the turn), that place, or the floor or now when later, if
// the floor comes at most arg(9) µs after it (the floor is the caller's
// own cooldown, which its member counted from another instant than
// Redis); else the earliest slot given back that is still ahead, or the
// later of the cooldown's end, the next free slot and now; never before
// now plus the floor arg(1). The next free slot then moves on by the pace (see
// letGo). arg(2) is the longest wait the caller accepts in µs (-1: no
// limit): a slot further away is not taken.
//
// When the host has no state at all (it expired, or Redis lost it), a
// cooldown of arg(4) µs that the member knows (0: none) is recorded again
// as a pushback would, with release gap arg(5), cause arg(6), channel
// arg(7) and host arg(8); a state Redis holds is never moved by what a
// member knows.
//
// arg(10) is how many successes of the host's first wave the caller's
// member counted since its last Reserve (admit).
//
// It returns {taken (0 or 1), wait µs, turn ID, epoch, rest of the
// cooldown µs, rest of the queue µs, gap ns, cause, recorded (0 or 1),
// the gap of the turn's ticket ns, rest of the pace µs}.
var reserveScript = redis.NewScript(luaPrelude + `
local floor = now + tonumber(arg(1))
local maxWait = tonumber(arg(2))
local restore = tonumber(arg(4))
if gapv == nil then gapv = tonumber(arg(5)) end
local recorded = 0
if kind == 'none' and restore > 0 then
  cool(restore, tonumber(arg(6)), pushback(0, 0, 0), arg(7), arg(8))
  recorded = 1
end
admit(tonumber(arg(10)) or 0, arg(7), arg(8))
redis.call('ZREMRANGEBYSCORE', hk, '-inf', now)
local slot, how, moved = nil, 'next', nil
local rq = arg(3)
if rq ~= '0' then
  moved = tonumber(redis.call('ZSCORE', tk, rq))
  if moved and moved >= untilv and math.max(moved, now) + tonumber(arg(9)) >= floor then
    slot, how = math.max(moved, floor, now), 'moved'
  elseif moved then -- a newer cooldown came, or the floor lies past its place: the turn is replaced
    drop({rq})
    if moved > now then redis.call('ZADD', hk, moved, moved) end
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
local taken, id, ticket = 1, 0, 0
if maxWait >= 0 and wait > maxWait then
  taken = 0
  if how == 'moved' then -- its place goes to the next caller
    drop({rq})
    redis.call('ZADD', hk, moved, moved)
  end
elseif how == 'moved' then
  redis.call('ZADD', tk, slot, rq)
  id, ticket = tonumber(rq), tonumber(redis.call('HGET', gk, rq)) or 0
else
  if how ~= 'next' then redis.call('ZREM', hk, how) end
  seqv = math.max(now, seqv + 1)
  id = seqv
  ticket = handOut(id, slot)
  local extra = redis.call('ZCARD', tk) - MAXTURNS
  if extra > 0 then drop(redis.call('ZRANGE', tk, 0, extra - 1)) end
end
save()
return {taken, wait, id, epochv, untilv - now, math.max(untilv, nextv) - now, gapNow(), causev, recorded, ticket, paceRest()}
`)

// cancelScript gives back the turn arg(1): the last one handed out moves
// the next free slot back onto it; an earlier one becomes a hole that the
// next reservation takes (at most arg(2) holes are kept). A turn whose
// slot has passed, or that is unknown, changes nothing. It returns 1 for
// a rollback, 2 for a hole, 0 otherwise.
var cancelScript = redis.NewScript(luaPrelude + `
if kind ~= 'hash' then return 0 end
local id = arg(1)
local slot = tonumber(redis.call('ZSCORE', tk, id))
if slot == nil or slot <= now then return 0 end
drop({id})
local last = redis.call('ZREVRANGE', tk, 0, 0, 'WITHSCORES')[2]
local res = 2
if last == nil or tonumber(last) < slot then
  nextv = slot
  res = 1
else
  redis.call('ZADD', hk, slot, slot)
  redis.call('ZREMRANGEBYRANK', hk, 0, -tonumber(arg(2)) - 1)
end
save()
return res
`)

// peekScript reads a host's state for a member that (re)subscribes:
// {rest of the cooldown µs, rest of the queue µs, gap ns, cause, epoch,
// rest of the pace µs}, or an empty array when there is none.
var peekScript = redis.NewScript(luaPrelude + `
if kind ~= 'hash' then return {} end
return {untilv - now, math.max(untilv, nextv) - now, gapNow(), causev, epochv, paceRest()}
`)
