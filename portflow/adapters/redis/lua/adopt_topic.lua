-- RedisStore.adopt_topic: tie a topic's marks to its current Kafka id.
-- KEYS: the marks hash, the topic ids hash. ARGV: topic, its current id, then the mark fields
-- of its partitions. Returns 0 (same id), 1 (first seen: adopted) or 2 (a new incarnation: the
-- topic's marks were dropped, so its partitions count again from their start).
local known = redis.call('HGET', KEYS[2], ARGV[1])
if known == ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if not known then return 1 end
for i = 3, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return 2
