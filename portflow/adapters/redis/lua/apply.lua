-- The atomic step of RedisStore.apply (portflow/adapters/redis/store.py; the key layout is
-- described once, in README.md, "Redis layout").
-- KEYS: the marks hash, the meta hash, the granule versions hash.
-- ARGV: epoch, dedupe bucket width (s), buckets before the current one to check, their expiry
-- after the current one's end (s), latest event time ('' when the step counts none), n_tp,
-- (mark, expected, new) x n_tp, n_groups, then per event type: its dedupe key prefix and its
-- ids (a MessagePack array of strings); then the aggregate key prefix, the increments, 1 on a
-- Redis Cluster (else 0), and the outcome counts: a MessagePack array of [key, field, n] to
-- add, one of [list key, value] to keep (while the list is shorter than the last argument), one
-- of keys to expire, their time to live (s), and how many values a list keeps.
-- The increments are lines joined by newlines, per granule a header line
-- "<TAB>type<TAB>granule<TAB>measure 1...<TAB>measure m" and its cells' lines
-- "cell<TAB>delta 1<TAB>...<TAB>delta m" (cells are never empty and hold neither; deltas are
-- integers, "0" writes nothing). One string rather than an argument per hash: the client
-- packs each argument in Python. Each granule written bumps its version ("type:granule"), so
-- readers know which of what they cached changed.
-- (The dedupe buckets and aggregate hashes are named here; they share the others' hash tag.)
-- Replies: a table whose first element says how the step ended, named in Python by ApplyReply
-- (store.py); each return below says which.
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then
  return {3}  -- ApplyReply.STATE_LOST
end
local width, older, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local latest = tonumber(ARGV[5])  -- nil: the step counts no event
local n_tp = tonumber(ARGV[6])
local a = 7
for i = 1, n_tp do
  local current = redis.call('HGET', KEYS[1], ARGV[a])
  if (current or '-1') ~= ARGV[a + 1] then
    return {1, ARGV[a], current or '-1'}  -- ApplyReply.MARK_MOVED
  end
  a = a + 3
end
local bucket = math.floor(tonumber(redis.call('TIME')[1]) / width)
local SLICE = 1000  -- ids per command (unpack puts them all on Lua's stack)
local function ids(all, n, s)  -- the s-th slice of a group's n ids
  return unpack(all, s + 1, math.min(s + SLICE, n))
end
local groups = {}
local seen = {2}  -- ApplyReply.SEEN_BEFORE, then the indexes of the ids seen before
local before = 0  -- ids of the groups before this one, for the indexes returned
for g = 1, tonumber(ARGV[a]) do
  local prefix, all = ARGV[a + 1], cmsgpack.unpack(ARGV[a + 2])
  local n = #all
  groups[g] = {prefix, all, n}
  for b = bucket - older, bucket do
    local key = prefix .. b
    if redis.call('EXISTS', key) == 1 then
      for s = 0, n - 1, SLICE do
        local found = redis.call('SMISMEMBER', key, ids(all, n, s))
        for x = 1, #found do
          if found[x] == 1 then seen[#seen + 1] = before + s + x end
        end
      end
    end
  end
  before = before + n
  a = a + 2
end
if #seen > 1 then
  return seen  -- ApplyReply.SEEN_BEFORE: some ids were seen before; write nothing
end
-- plain string.find, not patterns: Lua's pattern matching cost more than the HINCRBYs
local find, sub = string.find, string.sub
local agg, lines, cluster = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3] == '1'
local counts, kept = cmsgpack.unpack(ARGV[a + 4]), cmsgpack.unpack(ARGV[a + 5])
local expiring, ttl, keep_n = cmsgpack.unpack(ARGV[a + 6]), ARGV[a + 7], tonumber(ARGV[a + 8])
local last = #lines + 1
local function hashes(pos)  -- of the granule whose header line starts at pos; and its end
  local eol = find(lines, '\n', pos, true) or last
  local type_end = find(lines, '\t', pos + 1, true)
  local granule_end = find(lines, '\t', type_end + 1, true)
  local base = agg .. sub(lines, pos + 1, type_end - 1) .. ':'
  local granule = ':' .. sub(lines, type_end + 1, granule_end - 1)
  local keys, start = {}, granule_end + 1
  while start < eol do
    local stop = find(lines, '\t', start, true)
    if not stop or stop > eol then stop = eol end
    keys[#keys + 1] = base .. sub(lines, start, stop - 1) .. granule
    start = stop + 1
  end
  return keys, eol, sub(lines, pos + 1, granule_end - 1)
end
if cluster then
  -- A key this script names itself fails the script where it is first used if its slot is
  -- being migrated and the key already left; touch them all before the first write, so such a
  -- step writes nothing (the caller retries it) instead of half.
  for _, group in ipairs(groups) do
    redis.call('EXISTS', group[1] .. (bucket - older - 1))
  end
  redis.call('EXISTS', KEYS[3])
  local pos = 1
  while pos < last do
    local keys, eol = hashes(pos)
    for i = 1, #keys do redis.call('EXISTS', keys[i]) end
    pos = find(lines, '\n\t', eol, true)
    pos = pos and pos + 1 or last
  end
  for _, count in ipairs(counts) do redis.call('EXISTS', count[1]) end
  for _, value in ipairs(kept) do redis.call('EXISTS', value[1]) end
end
for _, group in ipairs(groups) do
  local prefix, all, n = group[1], group[2], group[3]
  local key = prefix .. bucket
  for s = 0, n - 1, SLICE do
    redis.call('SADD', key, ids(all, n, s))
  end
  redis.call('EXPIREAT', key, (bucket + 1) * width + keep)
  -- the bucket that just left the window: freed in the background, not by a blocking expiry
  redis.call('UNLINK', prefix .. (bucket - older - 1))
end
local pos, keys, m = 1, {}, 0
while pos < last do
  local stop = find(lines, '\t', pos, true)
  if stop == pos then  -- a granule's header: the hashes of its measures
    local granule
    keys, stop, granule = hashes(pos)
    m = #keys
    redis.call('HINCRBY', KEYS[3], (string.gsub(granule, '\t', ':', 1)), 1)
  else
    local cell = sub(lines, pos, stop - 1)
    for i = 1, m do
      local start = stop + 1
      stop = find(lines, i < m and '\t' or '\n', start, true) or last
      local delta = sub(lines, start, stop - 1)
      if delta ~= '0' then
        redis.call('HINCRBY', keys[i], cell, delta)
      end
    end
  end
  pos = stop + 1
end
local b = 7
for i = 1, n_tp do
  redis.call('HSET', KEYS[1], ARGV[b], ARGV[b + 2])
  b = b + 3
end
for _, count in ipairs(counts) do
  redis.call('HINCRBY', count[1], count[2], count[3])
end
for _, value in ipairs(kept) do
  if redis.call('LLEN', value[1]) < keep_n then
    redis.call('RPUSH', value[1], value[2])
  end
end
for _, key in ipairs(expiring) do
  redis.call('EXPIRE', key, ttl)
end
local stored = redis.call('HGET', KEYS[2], 'latest_event_ts')
if latest and (not stored or latest > tonumber(stored)) then  -- (before 1970 is negative)
  redis.call('HSET', KEYS[2], 'latest_event_ts', latest)
end
return {0}  -- ApplyReply.APPLIED
