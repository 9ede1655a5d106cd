"""The Redis backend of the KV contract (``storage.kv.KV``), on redis-py's sync client.

How it works:
- Key ``k`` is the Redis hash ``<namespace>k`` with fields ``v`` (the value) and ``x`` (expiry
  in milliseconds on the store's clock, absent when the key has no TTL). A sorted set
  ``<namespace>\\0index`` lists every key with score 0, so ``scan`` is a ZRANGEBYLEX: Redis
  orders members by memcmp of their UTF-8 bytes, i.e. by code point, as the contract wants.
- Every operation is one Lua script, so each is atomic against every other client of the
  server (other threads, processes, nodes): ``compare_and_set`` included.
- Time is the Redis server's clock (``TIME``, read inside the scripts), never the client's,
  so nodes with skewed clocks agree on whether a lease has expired. A key is dead once
  ``now >= x``; scripts treat it as absent before Redis reclaims it. Reclamation uses
  ``PEXPIRE`` with the same TTL, and dead index entries are dropped as scans meet them.
- ``clock_offset`` (seconds, added to the server's time) exists for tests that move time
  forward; since it only ever grows, Redis reclaims a key no earlier than it is dead.
- The client's connection pool is thread-safe: one ``RedisKV`` serves every worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis

from storage.kv import KVError

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
"""

# read the live value of KEYS[1] into `cur` (false when absent or expired)
_LIVE = """
local function live(k)
  local f = redis.call('HMGET', k, 'v', 'x')
  if not f[1] then return false end
  if f[2] and tonumber(f[2]) <= now then return false end
  return f[1]
end
"""

# write ARGV[v] with ttl ARGV[t] ('' = none) to data key KEYS[1], member ARGV[m] of KEYS[2]
_WRITE = """
local function write(k, member, value, ttl)
  redis.call('DEL', k)
  if ttl == '' then
    redis.call('HSET', k, 'v', value)
  else
    local ms = tonumber(ttl)
    redis.call('HSET', k, 'v', value, 'x', now + ms)
    redis.call('PEXPIRE', k, ms)
  end
  redis.call('ZADD', KEYS[2], 0, member)
end
"""

# KEYS: data key; ARGV: offset
_GET = _NOW + _LIVE + "return live(KEYS[1])"

# KEYS: data key, index; ARGV: offset, member, value, ttl
_SET = _NOW + _WRITE + "write(KEYS[1], ARGV[2], ARGV[3], ARGV[4]) return 1"

# KEYS: data key, index; ARGV: offset, member
_DELETE = (
    _NOW
    + _LIVE
    + """
local was = live(KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if was then return 1 else return 0 end
"""
)

# KEYS: data key, index; ARGV: offset, member, has_expected ('0'/'1'), expected, has_new, new, ttl
_CAS = (
    _NOW
    + _LIVE
    + _WRITE
    + """
local cur = live(KEYS[1])
if ARGV[3] == '1' then
  if cur ~= ARGV[4] then return 0 end
elseif cur then
  return 0
end
if ARGV[5] == '1' then
  write(KEYS[1], ARGV[2], ARGV[6], ARGV[7])
else
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
"""
)

# KEYS: index; ARGV: offset, namespace, prefix, limit (-1 = none)
# Returns a flat list key1, value1, key2, value2, ...
_SCAN = (
    _NOW
    + _LIVE
    + """
local ns, prefix, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out, found = {}, 0
local lo = '-'
if prefix ~= '' then lo = '[' .. prefix end
local batch = 256
while limit < 0 or found < limit do
  local members = redis.call('ZRANGEBYLEX', KEYS[1], lo, '+', 'LIMIT', 0, batch)
  if #members == 0 then break end
  for _, m in ipairs(members) do
    if string.sub(m, 1, #prefix) ~= prefix then return out end
    local v = live(ns .. m)
    if v then
      out[#out + 1] = m
      out[#out + 1] = v
      found = found + 1
      if limit >= 0 and found >= limit then return out end
    elseif redis.call('EXISTS', ns .. m) == 0 then
      redis.call('ZREM', KEYS[1], m)
    end
  end
  lo = '(' .. members[#members]
end
return out
"""
)


def _ttl_ms(ttl: float | None) -> str:
    if ttl is None:
        return ""
    if not ttl > 0:
        raise ValueError(f"ttl must be positive, got {ttl}")
    return str(max(1, round(ttl * 1000)))


class RedisKV:
    """``storage.kv.KV`` on a Redis server (any version with Lua scripting, 5 or later)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "gitserver:kv:",
        clock_offset: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """Connect lazily to ``url`` (``redis://HOST:PORT/DB``, redis-py syntax, so
        ``redis://:password@host`` and ``rediss://`` work). Keys live under ``namespace``."""
        self.namespace = namespace
        self._index = namespace + "\0index"
        self._offset = clock_offset
        try:
            self._redis: Any = redis.Redis.from_url(
                url, socket_timeout=10, socket_connect_timeout=10, health_check_interval=30
            )
            self._get = self._redis.register_script(_GET)
            self._set = self._redis.register_script(_SET)
            self._delete = self._redis.register_script(_DELETE)
            self._cas = self._redis.register_script(_CAS)
            self._scan = self._redis.register_script(_SCAN)
        except (redis.RedisError, ValueError) as exc:
            raise KVError(f"cannot open Redis KV {url!r}: {exc}") from exc
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> RedisKV:
        """``redis://HOST:PORT/DB``, optionally ``?namespace=PREFIX`` (default ``gitserver:kv:``)."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        namespace = query.pop("namespace", ["gitserver:kv:"])[-1]
        rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
        return cls(parts._replace(query=rest).geturl(), namespace=namespace)

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        if self._closed:
            raise KVError("KV store is closed")
        offset_ms = round(self._offset() * 1000)
        try:
            return script(keys=keys, args=[offset_ms, *args])
        except redis.RedisError as exc:
            raise KVError(f"Redis: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        value = self._run(self._get, [self.namespace + key], [])
        return None if value is None else bytes(value)

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        self._run(self._set, [self.namespace + key, self._index], [key, bytes(value), _ttl_ms(ttl)])

    def delete(self, key: str) -> bool:
        return bool(self._run(self._delete, [self.namespace + key, self._index], [key]))

    def scan(self, prefix: str, *, limit: int | None = None) -> list[tuple[str, bytes]]:
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        if limit == 0:
            return []
        flat = self._run(self._scan, [self._index], [self.namespace, prefix, -1 if limit is None else limit])
        return [(bytes(flat[i]).decode("utf-8"), bytes(flat[i + 1])) for i in range(0, len(flat), 2)]

    def compare_and_set(
        self, key: str, expected: bytes | None, new: bytes | None, *, ttl: float | None = None
    ) -> bool:
        args = [
            key,
            "0" if expected is None else "1",
            b"" if expected is None else bytes(expected),
            "0" if new is None else "1",
            b"" if new is None else bytes(new),
            _ttl_ms(ttl),
        ]
        return bool(self._run(self._cas, [self.namespace + key, self._index], args))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._redis.close()
