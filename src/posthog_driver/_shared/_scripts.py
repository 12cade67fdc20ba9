"""The Lua scripts the shared state runs in Redis: each decision is one atomic round trip.

Every script reads Redis's own clock (`TIME`), so processes on hosts whose clocks disagree
still share one timeline. Numbers go back as strings: Redis would truncate a Lua number.
Keys that belong together carry one hash tag (`{...}`), so a Redis Cluster keeps them on one
node.
"""

from __future__ import annotations

__all__ = [
    "ADMIT", "BREAKER_ENTER", "BREAKER_EXIT", "PAUSE", "SLOT_ACQUIRE", "SLOT_RENEW", "UNLOCK",
]  # fmt: skip

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS[1] the pause key; KEYS[2..] one sorted set per window (member: admission id, score:
# time). ARGV[1] the admission id; then per window its budget and its seconds.
# Returns {wait, paused}: wait 0 means admitted (recorded in every window); otherwise the
# seconds until the pause ends and every window has room, nothing recorded.
ADMIT = (
    _NOW
    + """
local paused = 0
local wait = 0
local until_ = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > now then
  paused = until_ - now
  wait = paused
end
for i = 2, #KEYS do
  local limit = tonumber(ARGV[2 * i - 2])
  local seconds = tonumber(ARGV[2 * i - 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - seconds)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + seconds - now
    if w > wait then wait = w end
  end
end
if wait <= 0 then
  for i = 2, #KEYS do
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 * i - 1]) * 1000) + 1000)
  end
  return {'0', '0'}
end
return {tostring(wait), tostring(paused)}
"""
)

# KEYS[1] the pause key; ARGV[1] seconds. A later end already in force is kept.
# Returns 1 when this pause took effect.
PAUSE = (
    _NOW
    + """
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ <= current then return 0 end
redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
return 1
"""
)

# KEYS[1] the slots' sorted set (member: holder id, score: lease end). ARGV: holder id, slot
# count, lease seconds. Expired leases are dropped first, so a crashed holder's slot comes back.
# Returns 1 when the slot is taken, 0 when all are held.
SLOT_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000) + 1000)
return 1
"""
)

# KEYS[1] the slots' sorted set; ARGV[1] lease seconds, ARGV[2] slot count, ARGV[3..] holder
# ids to renew. A holder whose lease is gone (expired, or Redis restarted empty) takes its slot
# again if one is free. Returns the ids that found none: they no longer hold a slot.
SLOT_RENEW = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lost = {}
local lease = tonumber(ARGV[1])
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
  elseif redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now + lease, ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], math.ceil(lease * 1000) + 1000)
return lost
"""
)

# The breaker's hash: state (closed|open|half_open), failures, reset_at, probe, probe_until.
# KEYS[1] the hash; ARGV: probe id, probe lease seconds, reset seconds.
# Returns {verdict, retry_after, failures}: verdict 'admit' (closed), 'probe' (this attempt is
# the fleet's one half-open probe), 'open' or 'probing' (rejected).
BREAKER_ENTER = (
    _NOW
    + """
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'reset_at', 'probe_until')
local state = h[1] or 'closed'
local failures = h[2] or '0'
if state == 'closed' then return {'admit', '0', failures} end
local reset_at = tonumber(h[3] or '0')
if now < reset_at then return {'open', tostring(reset_at - now), failures} end
if tonumber(h[4] or '0') > now then
  return {'probing', tostring(math.min(1, tonumber(ARGV[3]))), failures}
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe', ARGV[1],
           'probe_until', tostring(now + tonumber(ARGV[2])))
return {'probe', '0', failures}
"""
)

# KEYS[1] the hash; ARGV: outcome (success|failure|cancel), is_probe (1|0), probe id, threshold,
# reset seconds. Returns the transition it made: 'opened', 'closed' or ''.
BREAKER_EXIT = (
    _NOW
    + """
local outcome = ARGV[1]
local function done(transition)
  redis.call('PEXPIRE', KEYS[1], 86400000)  -- a forgotten breaker does not stay for ever
  return transition
end
if ARGV[2] == '1' then  -- the probe
  if redis.call('HGET', KEYS[1], 'probe') ~= ARGV[3] then return '' end
  if outcome == 'cancel' then
    redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
    return ''
  end
  if outcome == 'failure' then
    redis.call('HINCRBY', KEYS[1], 'failures', 1)
    redis.call('HSET', KEYS[1], 'state', 'open', 'reset_at', tostring(now + tonumber(ARGV[5])))
    redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
    return done('opened')
  end
  redis.call('DEL', KEYS[1])
  return 'closed'
end
if outcome == 'cancel' or (redis.call('HGET', KEYS[1], 'state') or 'closed') ~= 'closed' then
  return ''
end
if outcome == 'failure' then
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures >= tonumber(ARGV[4]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'reset_at', tostring(now + tonumber(ARGV[5])))
    return done('opened')
  end
  return done('')
end
if tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') > 0 then
  redis.call('HSET', KEYS[1], 'failures', 0)
end
return ''
"""
)

# KEYS[1] a lock; ARGV[1] its owner's token. Deletes the lock only if it is still that owner's.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
