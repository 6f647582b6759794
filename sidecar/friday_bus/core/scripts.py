"""Lua scripts: every multi-step change of a stream happens atomically inside Redis.

Atomicity is what makes the edge cases safe: a dead letter is written and the original
acked in one step (nothing lost, nothing doubled), a due retry is claimed by exactly one
consumer, an idle consumer is removed only if it still holds no pending entry.
"""

from __future__ import annotations

from string import Template

from . import codec


def _lua_name(name: str) -> str:
    """A codec field name as a Lua string literal (field names are plain identifiers: checked)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"field name {name!r} cannot be put in a Lua string literal as is")
    return f"'{name}'"


# Every field name the scripts write or recognise comes from the codec: ``$F_DLQ_REASON`` in a
# script template becomes ``codec.F_DLQ_REASON`` as a Lua string. ``Template.substitute`` refuses
# a stray ``$`` or an unknown name, so a template cannot go out half rendered.
_NAMES = {
    "F_DLQ_REASON": _lua_name(codec.F_DLQ_REASON),
    "F_DLQ_ORIGINAL_ID": _lua_name(codec.F_DLQ_ORIGINAL_ID),
    "F_DLQ_GROUP": _lua_name(codec.F_DLQ_GROUP),
    "F_DLQ_DELIVERIES": _lua_name(codec.F_DLQ_DELIVERIES),
    "F_DLQ_AT": _lua_name(codec.F_DLQ_AT),
    "DLQ_PREFIX": _lua_name(codec.DLQ_PREFIX),
    "DLQ_PREFIX_LEN": str(len(codec.DLQ_PREFIX)),
    "F_TS": _lua_name(codec.F_TS),
}


def _render(template: str) -> str:
    return Template(template).substitute(_NAMES)


# Shared helper: move one pending entry to the dead-letter stream, then ack it.
_DEADLETTER = _render(r"""
local function deadletter(stream, dlq, zkey, rkey, group, id, deliveries, reason, now)
  local entry = redis.call('XRANGE', stream, id, id)
  redis.call('ZREM', zkey, id)
  redis.call('HDEL', rkey, id)
  if #entry == 0 then
    redis.call('XACK', stream, group, id)
    return false
  end
  local fields = entry[1][2]
  local n = #fields
  fields[n + 1] = $F_DLQ_REASON; fields[n + 2] = reason
  fields[n + 3] = $F_DLQ_ORIGINAL_ID; fields[n + 4] = id
  fields[n + 5] = $F_DLQ_GROUP; fields[n + 6] = group
  fields[n + 7] = $F_DLQ_DELIVERIES; fields[n + 8] = tostring(deliveries)
  fields[n + 9] = $F_DLQ_AT; fields[n + 10] = tostring(now)
  local dlq_id = redis.call('XADD', dlq, '*', unpack(fields))
  redis.call('XACK', stream, group, id)
  return dlq_id
end

-- An entry that used up its deliveries without an ack: dead-letter it with its last nack
-- reason, or say that it was never acknowledged. True if written, false if it was gone.
local function deadletter_exhausted(stream, dlq, zkey, rkey, group, id, deliveries, idle, now)
  local reason = redis.call('HGET', rkey, id)
  if not reason then
    reason = 'not acknowledged within ' .. idle .. ' ms, ' .. deliveries .. ' deliveries'
  end
  return deadletter(stream, dlq, zkey, rkey, group, id, deliveries, reason, now) ~= false
end
""")

# KEYS: the streams and idempotency keys referenced by index.
# ARGV[1] = number of events; then per event:
#   stream key index, idempotency key index (0: none), window seconds, cap (0: none), number of field args, fields...
# Returns, per event, {entry id, 1 if duplicate else 0}; or the error "BACKLOG_FULL <stream> <len> <cap>".
# Nothing is written when any cap is reached.
PUBLISH = r"""
local n = tonumber(ARGV[1])
local pos = 2
local events = {}
for i = 1, n do
  local e = {s = tonumber(ARGV[pos]), k = tonumber(ARGV[pos + 1]), w = tonumber(ARGV[pos + 2]),
             cap = tonumber(ARGV[pos + 3]), nf = tonumber(ARGV[pos + 4]), start = pos + 5}
  pos = pos + 5 + e.nf
  events[i] = e
end
local results = {}
local planned = {}
for i, e in ipairs(events) do
  if e.k > 0 then
    local prev = redis.call('GET', KEYS[e.k])
    if prev then
      -- A duplicate writes nothing, so a WAIT after this call would only count the replicas that
      -- caught up with this connection's earlier writes, not with the first publish (perhaps made
      -- on another connection and not replicated yet). Rewriting the key (same value and TTL) is a
      -- write that replicates after the first publish: a WAIT that confirms it confirms that one.
      redis.call('SET', KEYS[e.k], prev, 'KEEPTTL')
      results[i] = {prev, 1}
    end
  end
  if not results[i] and e.cap > 0 then
    local stream = KEYS[e.s]
    local add = (planned[stream] or 0) + 1
    local len = redis.call('XLEN', stream)
    if len + add > e.cap then
      return redis.error_reply('BACKLOG_FULL ' .. stream .. ' ' .. len .. ' ' .. e.cap)
    end
    planned[stream] = add
  end
end
local seen = {}
for i, e in ipairs(events) do
  if not results[i] then
    local key = e.k > 0 and KEYS[e.k] or nil
    if key and seen[key] then
      results[i] = {seen[key], 1}
    else
      local id = redis.call('XADD', KEYS[e.s], '*', unpack(ARGV, e.start, e.start + e.nf - 1))
      if key then
        redis.call('SET', key, id, 'EX', e.w)
        seen[key] = id
      end
      results[i] = {id, 0}
    end
  end
end
return results
"""

# KEYS: stream, retry zset, reasons hash, dead-letter stream
# ARGV: group, consumer, now ms, count, claim idle ms, max deliveries, scan count
# Returns {entries, gone, dead, reclaimed, retried}; entries are {id, fields, delivery count}.
CLAIM = _DEADLETTER + r"""
local stream, zkey, rkey, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer = ARGV[1], ARGV[2]
local now, count, idle = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local maxd, scan = tonumber(ARGV[6]), tonumber(ARGV[7])
local out = {}
local gone, dead, reclaimed, retried = 0, 0, 0, 0

local function take(id, deliveries, min_idle)
  local claimed = redis.call('XCLAIM', stream, group, consumer, min_idle, id)
  if #claimed == 0 then
    -- trimmed or deleted while pending: nothing left to deliver; ack it away
    redis.call('XACK', stream, group, id)
    redis.call('HDEL', rkey, id)
    gone = gone + 1
    return false
  end
  out[#out + 1] = {claimed[1][1], claimed[1][2], deliveries + 1}
  return true
end

local due = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, count)
for _, id in ipairs(due) do
  redis.call('ZREM', zkey, id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if #p == 0 then
    redis.call('HDEL', rkey, id)
  elseif take(id, p[1][4], 0) then
    retried = retried + 1
  end
end

if #out < count then
  local pending = redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', scan)
  for _, e in ipairs(pending) do
    if #out >= count then break end
    local id, deliveries = e[1], e[4]
    if not redis.call('ZSCORE', zkey, id) then
      if deliveries >= maxd then
        if deadletter_exhausted(stream, dlq, zkey, rkey, group, id, deliveries, idle, now) then
          dead = dead + 1
        else
          gone = gone + 1
        end
      elseif take(id, deliveries, idle) then
        reclaimed = reclaimed + 1
      end
    end
  end
end
return {out, gone, dead, reclaimed, retried}
"""

# KEYS: stream, retry zset, reasons hash, dead-letter stream
# ARGV: group, id, reason, now ms, max deliveries, then the backoff delay (ms) after 1, 2, ... deliveries
# Returns {'retry', due ms} | {'dead', dlq id} | {'gone'} | {'not_pending'}
NACK = _DEADLETTER + r"""
local stream, zkey, rkey, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, id, reason = ARGV[1], ARGV[2], ARGV[3]
local now, maxd = tonumber(ARGV[4]), tonumber(ARGV[5])
local p = redis.call('XPENDING', stream, group, id, id, 1)
if #p == 0 then return {'not_pending'} end
local deliveries = p[1][4]
if deliveries >= maxd then
  local dlq_id = deadletter(stream, dlq, zkey, rkey, group, id, deliveries, reason, now)
  if dlq_id then return {'dead', dlq_id} end
  return {'gone'}
end
local delay = tonumber(ARGV[5 + deliveries] or ARGV[#ARGV])
redis.call('ZADD', zkey, now + delay, id)
redis.call('HSET', rkey, id, reason)
return {'retry', tostring(now + delay)}
"""

# KEYS: stream, retry zset, reasons hash, dead-letter stream
# ARGV: group, now ms, max deliveries, claim idle ms, scan count
# Dead-letters entries already delivered max times and idle past the claim time, even when no
# consumer reads any more (the recovery loop). Returns {dead, gone}.
SWEEP = _DEADLETTER + r"""
local stream, zkey, rkey, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, now, maxd, idle, scan = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local dead, gone = 0, 0
local pending = redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', scan)
for _, e in ipairs(pending) do
  local id, deliveries = e[1], e[4]
  if deliveries >= maxd and not redis.call('ZSCORE', zkey, id) then
    if deadletter_exhausted(stream, dlq, zkey, rkey, group, id, deliveries, idle, now) then
      dead = dead + 1
    else
      gone = gone + 1
    end
  end
end
return {dead, gone}
"""

# KEYS: stream. ARGV: retention, boundary id (entries strictly before it are acked by every group), max count.
# Removes the oldest entries beyond the retention bound, never one at or after the boundary.
# Returns {removed, length after}.
SAFE_TRIM = r"""
local key = KEYS[1]
local len = redis.call('XLEN', key)
local excess = len - tonumber(ARGV[1])
if excess <= 0 then return {0, len} end
local maxn = tonumber(ARGV[3])
if excess > maxn then excess = maxn end
local r = redis.call('XRANGE', key, '-', '(' .. ARGV[2], 'COUNT', excess)
if #r == 0 then return {0, len} end
local last = r[#r][1]
redis.call('XTRIM', key, 'MINID', last)
redis.call('XDEL', key, last)
return {#r, redis.call('XLEN', key)}
"""

# KEYS: stream. ARGV: group, consumer, min idle ms.
# Deletes the consumer only if it holds no pending entry and is idle long enough. Returns 1 if deleted.
DELETE_IDLE_CONSUMER = r"""
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then return 0 end
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] == ARGV[2] then
    if tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return 0
"""

# KEYS: stream. ARGV: group, consumer, ids...
# Resets the idle time of the entries this consumer still owns (work in progress), so that they
# are not reclaimed; JUSTID keeps the delivery count. Entries another consumer took are left alone.
# Returns how many were extended.
EXTEND = r"""
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
"""

# KEYS: stream, retry zset. ARGV: group, consumer, claim idle ms, then per delivery: id, delivery count.
# Gives back deliveries the consumer never handed to its code. Each entry still pending for THIS
# consumer with THIS delivery count (and not waiting for a nack's retry) gets its count lowered
# by one (RETRYCOUNT; JUSTID does not raise it) and its idle time set to the claim idle time
# (IDLE): the next claim of the group, by any consumer, takes it at once and raises the count
# back to what it was. Anything else is skipped: acked, reclaimed by another consumer, delivered
# again since (the count moved on), or nacked. Returns how many were released.
RELEASE = r"""
local stream, zkey = KEYS[1], KEYS[2]
local group, consumer, idle = ARGV[1], ARGV[2], ARGV[3]
local n = 0
for i = 4, #ARGV - 1, 2 do
  local id, count = ARGV[i], tonumber(ARGV[i + 1])
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if #p > 0 and p[1][2] == consumer and p[1][4] == count and not redis.call('ZSCORE', zkey, id) then
    redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', idle, 'RETRYCOUNT', tostring(count - 1), 'JUSTID')
    n = n + 1
  end
end
return n
"""

# KEYS: dead-letter stream, target stream. ARGV: dlq id, replayed-from field name.
# Re-publishes one dead letter's original fields into its stream and removes it from the
# dead-letter stream, atomically. Returns the new entry id, or false when the dead letter is gone.
# A typed entry (it has the publish-time field) is marked with the dead letter's id (replacing an
# earlier mark); a seed entry (the seed's publisher, or the seed wire format) gets back exactly
# its original fields and no mark: every key of such an entry is payload to its consumers.
REPLAY = _render(r"""
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #entry == 0 then return false end
local src = entry[1][2]
local typed = false
for i = 1, #src, 2 do
  if src[i] == $F_TS then typed = true end
end
local fields = {}
for i = 1, #src, 2 do
  local k = src[i]
  if string.sub(k, 1, $DLQ_PREFIX_LEN) ~= $DLQ_PREFIX and not (typed and k == ARGV[2]) then
    fields[#fields + 1] = k
    fields[#fields + 1] = src[i + 1]
  end
end
if typed then
  fields[#fields + 1] = ARGV[2]
  fields[#fields + 1] = ARGV[1]
end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
""")

# KEYS: stream. ARGV: exclusive start id, cap. Counts entries after an id (lag when Redis cannot tell).
COUNT_AFTER = r"""
return #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
"""
