//! The Lua scripts: each one atomic on the server (Redis runs one script at a time), sent as
//! `EVALSHA` by [`redis::Script`] (loaded on first use, and again after a server restart).
//!
//! A grant is two keys with one expiry: `grant:<h>` holds `<max_uses>|<stamp>|<terms JSON>`
//! (`SET NX PX <ttl>`), `uses:<h>` its use counter (`PX` the same). A spent grant is deleted
//! by the first caller that finds it spent, so that a fresh decision can be stored.

/// Records the `jti` (when `ARGV[1]` > 0), then takes one use of the live grant, else reports
/// the negative cache (when `ARGV[4]` is `1`), else claims the PDP call (when `ARGV[2]` holds
/// a token). One round trip for a warm decision.
///
/// `KEYS`: replay, grant, uses, deny, claim. `ARGV`: replay window ms, claim token (or
/// empty), claim ms, check the negative cache (`1`/`0`).
/// Returns `{0}` replay, `{1, used, pttl, value}` a use taken, `{2}` denied, `{3}` vacant
/// (claimed when a token was given), `{4}` busy (another caller holds the claim).
pub(super) const DECIDE: &str = r"
local window = tonumber(ARGV[1])
if window > 0 and not redis.call('SET', KEYS[1], '1', 'NX', 'PX', window) then
  return {0}
end
local value = redis.call('GET', KEYS[2])
if value then
  local max = tonumber(string.match(value, '^(%d+)|'))
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if max and used < max then
    used = redis.call('INCR', KEYS[3])
    local ttl = redis.call('PTTL', KEYS[2])
    if ttl > 0 and redis.call('PTTL', KEYS[3]) < 0 then
      redis.call('PEXPIRE', KEYS[3], ttl)
    end
    return {1, used, ttl, value}
  end
  redis.call('DEL', KEYS[2], KEYS[3])
end
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then
  return {2}
end
if ARGV[2] == '' then
  return {3}
end
if redis.call('SET', KEYS[5], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {3}
end
return {4}
";

/// Stores a grant unless a live, unspent one is there (`SET NX PX`; a spent one is dropped
/// first), resets its counter with the same expiry, releases the claim, and takes one use of
/// the grant that now serves the key (when `ARGV[4]` is `1`).
///
/// `KEYS`: grant, uses, claim. `ARGV`: value, ttl ms, uses at issue, take (`1`/`0`), claim
/// token (or empty).
/// Returns `{1, used, pttl, value, won}`, or `{3, won}` when the serving grant is spent.
pub(super) const PUT: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local max = tonumber(string.match(current, '^(%d+)|'))
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if not max or used >= max then
    redis.call('DEL', KEYS[1], KEYS[2])
  end
end
local won = 0
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
  won = 1
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) == ARGV[5] then
  redis.call('DEL', KEYS[3])
end
local value = redis.call('GET', KEYS[1])
if not value then
  return {3, won}
end
local ttl = redis.call('PTTL', KEYS[1])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[4] == '1' then
  local max = tonumber(string.match(value, '^(%d+)|'))
  if not max or used >= max then
    return {3, won}
  end
  used = redis.call('INCR', KEYS[2])
  if ttl > 0 and redis.call('PTTL', KEYS[2]) < 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return {1, used, ttl, value, won}
";

/// Gives one use back to the grant whose stamp is `ARGV[1]`: never below zero, never to a
/// later grant under the same key. `KEYS`: grant, uses. Returns 1 when a use went back.
pub(super) const GIVE_BACK: &str = r"
local value = redis.call('GET', KEYS[1])
if not value or string.match(value, '^%d+|([^|]*)|') ~= ARGV[1] then
  return 0
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used <= 0 then
  return 0
end
redis.call('DECR', KEYS[2])
return 1
";

/// Releases the claim `KEYS[1]` if it still holds the token `ARGV[1]`.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// The live, unspent grant, without taking a use. `KEYS`: grant, uses.
/// Returns `{1, used, pttl, value}` or `{3}`.
pub(super) const PEEK: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then
  return {3}
end
local max = tonumber(string.match(value, '^(%d+)|'))
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if not max or used >= max then
  return {3}
end
return {1, used, redis.call('PTTL', KEYS[1]), value}
";
