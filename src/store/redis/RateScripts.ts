/**
 * The Lua scripts of the Redis rate-limit store, one per operation, each run
 * atomically by Redis over every rule of a request. They do the arithmetic of the
 * other stores (`RateArithmetic.ts`) line for line in Lua numbers (IEEE doubles, as
 * in JavaScript and PostgreSQL, and every TAT is exact on its tick grid): TAT values are written with 17 significant digits so they read back exactly, and
 * every number is returned as a string because Redis truncates Lua numbers to
 * integers on the way out.
 *
 * `now` always comes from the caller (Effect's `Clock`), never from the Redis server,
 * so every store agrees and `TestClock` drives them all. Key expiry is the only use of
 * the server's clock: a bucket's keys vanish ten minutes after its TAT, when it has
 * long been idle (a correction of more than ten minutes of tokens arriving later finds
 * nothing to correct).
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"

/** A script with the digest `EVALSHA` names it by. @since 0.1.0 */
export interface Script {
  readonly lua: string
  readonly sha: string
}

const script = (lua: string): Script => ({ lua, sha: createHash("sha1").update(lua).digest("hex") })

const COMMON = `
local WINDOW = 60000
local TICKS = 122880000
local TICK = 1 / 2048
local PARALLEL_RETRY = 1000
local IDLE = 600000
local function num(x) return string.format('%.17g', x) end
local function interval_of(limit) return math.max(1, math.floor(TICKS / limit + 0.5)) * TICK end
local function units_left(burst, ahead, interval)
  return math.max(0, math.floor((burst - ahead) / interval))
end
local function store_tat(key, tat, now)
  redis.call('SET', key, num(tat), 'PX', math.ceil(math.max(tat - now, 0)) + IDLE)
end
`

/**
 * KEYS: one per rule (its TAT key, or its lease set for `p`).
 * ARGV: now, leaseMillis, ticketId, tokens, then kind (`r`, `t`, `p`) and limit per rule.
 * Returns `{"A", remaining...}` or `{"R", index, retryAfterMillis, remaining...}`, where a
 * refusal's remaining is every rule's before the request (it counts nothing).
 *
 * @since 0.1.0
 */
export const acquire: Script = script(`${COMMON}
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local ticket = ARGV[3]
local tokens = tonumber(ARGV[4])
local tats = {}
local live = {}
local remaining = {}
local refused = nil
local retry = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local kind = ARGV[3 + 2 * i]
  local limit = tonumber(ARGV[4 + 2 * i])
  if kind == 'p' then
    if live[key] == nil then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
      live[key] = redis.call('ZCARD', key)
    end
    if live[key] >= limit then
      refused, retry = i - 1, PARALLEL_RETRY
      break
    end
    live[key] = live[key] + 1
    remaining[i] = tostring(limit - live[key])
  else
    local cost = tokens
    if kind == 'r' then cost = 1 end
    local interval = interval_of(limit)
    local burst = limit * interval
    local tat = tats[key]
    if tat == nil then tat = tonumber(redis.call('GET', key)) or now end
    local base = math.max(tat, now)
    local next = base + cost * interval
    local ahead = next - now
    if cost > limit or ahead > burst then
      refused, retry = i - 1, ahead - burst
      if cost > limit then retry = WINDOW end
      break
    end
    tats[key] = next
    remaining[i] = tostring(units_left(burst, ahead, interval))
  end
end
if refused ~= nil then
  -- Every rule as stored, read again: a key named twice must not see the earlier rule's units.
  local out = {'R', tostring(refused), num(retry)}
  for i = 1, #KEYS do
    local key = KEYS[i]
    local limit = tonumber(ARGV[4 + 2 * i])
    if ARGV[3 + 2 * i] == 'p' then
      out[i + 3] = tostring(math.max(0, limit - redis.call('ZCOUNT', key, '(' .. ARGV[1], '+inf')))
    else
      local interval = interval_of(limit)
      local tat = tonumber(redis.call('GET', key)) or now
      out[i + 3] = tostring(units_left(limit * interval, math.max(tat, now) - now, interval))
    end
  end
  return out
end
for key, tat in pairs(tats) do store_tat(key, tat, now) end
for i = 1, #KEYS do
  if ARGV[3 + 2 * i] == 'p' then
    local key = KEYS[i]
    redis.call('ZADD', key, num(now + lease), ticket)
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', key, math.ceil(tonumber(last[2]) - now) + IDLE)
  end
end
local out = {'A'}
for i = 1, #KEYS do out[i + 1] = remaining[i] end
return out
`)

/**
 * KEYS: one per rule, as for {@link acquire}.
 * ARGV: now, ticketId, tokensDelta, refundRequest (`1` or `0`), then kind and limit per rule.
 *
 * @since 0.1.0
 */
export const complete: Script = script(`${COMMON}
local now = tonumber(ARGV[1])
local ticket = ARGV[2]
local delta = tonumber(ARGV[3])
local refund = ARGV[4] == '1'
for i = 1, #KEYS do
  local key = KEYS[i]
  local kind = ARGV[3 + 2 * i]
  local limit = tonumber(ARGV[4 + 2 * i])
  if kind == 'p' then
    redis.call('ZREM', key, ticket)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  else
    local units = 0
    if kind == 't' then units = delta end
    if kind == 'r' and refund then units = -1 end
    if units ~= 0 then
      local tat = tonumber(redis.call('GET', key)) or now
      store_tat(key, math.max(math.max(tat, now) + units * interval_of(limit), now), now)
    end
  end
end
return 'OK'
`)
