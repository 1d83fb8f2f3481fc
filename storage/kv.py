"""Short-lived shared state: dedup keys, reply cache, dialog state, access token, rate limits, locks.

Redis when REDIS_URL is set, an in-process store otherwise. `ResilientKV` keeps answering from the
in-process store while Redis is unreachable (logging the degraded state) and goes back to Redis by
itself once it answers again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import hiredis
import redis

log = logging.getLogger("houqin.kv")


Write = tuple[str, str | None, float | None]  # (key, value or None to delete, ttl)


class KV(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    def set_nx(self, key: str, value: str, ttl: float | None = None) -> bool: ...
    def delete(self, key: str) -> None: ...
    def incr(self, key: str, ttl: float | None = None) -> int: ...
    def delete_if(self, key: str, value: str) -> bool: ...
    def set_nx_get(self, key: str, value: str, ttl: float | None, reads: list[str]) -> tuple[bool, dict[str, str | None]]:
        ...
    def batch(self, writes: list[Write]) -> None: ...
    def elapse(self, seconds: float) -> None: ...


class MemoryKV:
    """One process only. Thread-safe; expired keys are dropped lazily."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = threading.Lock()
        self._skew = 0.0  # seconds a test's clock has jumped (elapse): expiries follow the injected clock

    def _now(self) -> float:
        return time.monotonic() + self._skew

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._now():
            del self._data[key]
            return None
        return value

    def _exp(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._now() + ttl

    def elapse(self, seconds: float) -> None:
        """The clock jumped by `seconds` (storage.clock.FrozenClock.on_jump): keys expire accordingly."""
        with self._lock:
            self._skew += seconds

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, self._exp(ttl))

    def set_nx(self, key: str, value: str, ttl: float | None = None) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._exp(ttl))
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def delete_if(self, key: str, value: str) -> bool:
        with self._lock:
            if self._live(key) == value:
                del self._data[key]
                return True
            return False

    def incr(self, key: str, ttl: float | None = None) -> int:
        with self._lock:
            current = self._live(key)
            n = int(current or 0) + 1
            expires = self._data[key][1] if current is not None else self._exp(ttl)
            self._data[key] = (str(n), expires)
            return n

    def set_nx_get(self, key: str, value: str, ttl: float | None, reads: list[str]) -> tuple[bool, dict[str, str | None]]:
        """set_nx, and the values of `reads`, in one step."""
        with self._lock:
            got = self._live(key) is None
            if got:
                self._data[key] = (value, self._exp(ttl))
            return got, {k: self._live(k) for k in reads}

    def batch(self, writes: list[Write]) -> None:
        """Several sets (value) and deletes (None), in order, in one step."""
        with self._lock:
            for key, value, ttl in writes:
                if value is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = (value, self._exp(ttl))

    def flush(self) -> None:
        with self._lock:
            self._data.clear()


_DELETE_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


IDLE_CHECK = 5.0  # s a thread's own Redis connection may sit idle before it is checked with a PING


class _Held:
    """A thread's own Redis connection, and when it was last used."""

    def __init__(self, conn: redis.Connection) -> None:
        self.conn = conn
        self.used = time.monotonic()


class RedisKV:
    def __init__(self, url: str, prefix: str = "houqin:") -> None:
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._delete_if = self.client.register_script(_DELETE_IF)
        # The hot path's round trips (a message's claim, its reply) go over a connection of the calling thread's
        # own: redis-py's pipeline and pool cost about as much CPU as the round trip itself (bench/cpu.py). A
        # thread's connection is closed when the thread ends (the holder is dropped with its thread-local).
        self._local = threading.local()
        self._holders: weakref.WeakSet[_Held] = weakref.WeakSet()

    def _connection(self) -> redis.Connection:
        holder: _Held | None = getattr(self._local, "holder", None)
        if holder is None:
            conn = self.client.connection_pool.make_connection()
            holder = _Held(conn)  # type: ignore[arg-type]
            weakref.finalize(holder, conn.disconnect)
            self._local.holder = holder
            self._holders.add(holder)
        elif time.monotonic() - holder.used > IDLE_CHECK:
            try:  # idle a while: Redis may have restarted or dropped it — find out now, not mid-claim
                holder.conn.send_command("PING")
                holder.conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                holder.conn.disconnect()  # the next send connects afresh
        holder.used = time.monotonic()
        return holder.conn

    def _roundtrip(self, commands: list[tuple[str | int, ...]]) -> list[object]:
        """Send several commands at once and read their replies (what a non-transactional pipeline does)."""
        conn = self._connection()
        try:
            conn.send_packed_command([b"".join(map(hiredis.pack_command, commands))], check_health=False)
            return [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()  # replies may be left unread: never reuse it as it is (it reconnects when next used)
            raise

    def close(self) -> None:
        for holder in list(self._holders):
            holder.conn.disconnect()
        self.client.close()

    def _k(self, key: str) -> str:
        return self.prefix + key

    @staticmethod
    def _ms(ttl: float | None) -> int | None:
        return None if ttl is None else max(1, int(ttl * 1000))

    def get(self, key: str) -> str | None:
        return self.client.get(self._k(key))  # type: ignore[return-value]

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self.client.set(self._k(key), value, px=self._ms(ttl))

    def _set(self, key: str, value: str, ttl: float | None, *flags: str) -> tuple[str | int, ...]:
        ms = self._ms(ttl)
        return ("SET", self._k(key), value, *(("PX", ms) if ms is not None else ()), *flags)

    def set_nx(self, key: str, value: str, ttl: float | None = None) -> bool:
        return bool(self.client.set(self._k(key), value, px=self._ms(ttl), nx=True))

    def delete(self, key: str) -> None:
        self.client.delete(self._k(key))

    def delete_if(self, key: str, value: str) -> bool:
        return bool(self._delete_if(keys=[self._k(key)], args=[value]))

    def incr(self, key: str, ttl: float | None = None) -> int:
        pipe = self.client.pipeline()
        pipe.incr(self._k(key))
        pipe.pttl(self._k(key))
        n, pttl = pipe.execute()
        if ttl is not None and pttl < 0:
            self.client.pexpire(self._k(key), self._ms(ttl))  # type: ignore[arg-type]
        return int(n)

    def set_nx_get(self, key: str, value: str, ttl: float | None, reads: list[str]) -> tuple[bool, dict[str, str | None]]:
        """set_nx, and the values of `reads`, in one round trip (a pipeline): the message claim and the
        sender's dialog state arrive together."""
        got, *values = self._roundtrip([self._set(key, value, ttl, "NX"), *(("GET", self._k(k)) for k in reads)])
        return bool(got), dict(zip(reads, values, strict=True))  # type: ignore[arg-type]

    def batch(self, writes: list[Write]) -> None:
        """Several sets (value) and deletes (None), in order, in one round trip."""
        if not writes:
            return
        self._roundtrip([("DEL", self._k(key)) if value is None else self._set(key, value, ttl)
                         for key, value, ttl in writes])

    def elapse(self, seconds: float) -> None:
        """The clock jumped by `seconds` (tests only: storage.clock.FrozenClock.on_jump). Redis keeps its own
        time, so every expiring key under our prefix has its remaining time cut (or lengthened) by as much."""
        ms = int(seconds * 1000)
        keys = list(self.client.scan_iter(self.prefix + "*"))
        if not keys or not ms:
            return
        pipe = self.client.pipeline(transaction=False)
        for k in keys:
            pipe.pttl(k)
        left = pipe.execute()
        for k, pttl in zip(keys, left, strict=True):
            if pttl is None or pttl < 0:
                continue  # no expiry (-1), or gone meanwhile (-2)
            if pttl - ms <= 0:
                pipe.delete(k)
            else:
                pipe.pexpire(k, pttl - ms)
        pipe.execute()

    def ping(self) -> bool:
        return bool(self.client.ping())

    def flush(self) -> None:
        keys = list(self.client.scan_iter(self.prefix + "*"))
        if keys:
            self.client.delete(*keys)


class ResilientKV:
    """Redis first; on a connection failure, the in-process store until Redis answers again.

    While degraded, dedup and locks only hold within this process: that is logged loudly, and it is
    still at-most-once for a single worker.
    """

    retry_after = 2.0

    def __init__(self, primary: RedisKV) -> None:
        self.primary = primary
        self.fallback = MemoryKV()
        self.degraded = False
        self._down_since = 0.0
        self._lock = threading.Lock()

    def _call(self, name: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if self.degraded and time.monotonic() - self._down_since < self.retry_after:
            return getattr(self.fallback, name)(*args, **kwargs)
        try:
            result = getattr(self.primary, name)(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            with self._lock:
                if not self.degraded:
                    log.error("Redis unreachable (%s): using the in-process store; single-worker guarantees only", exc)
                self.degraded = True
                self._down_since = time.monotonic()
            return getattr(self.fallback, name)(*args, **kwargs)
        if self.degraded:
            with self._lock:
                if self.degraded:
                    log.warning("Redis is back: leaving degraded mode")
                    self.degraded = False
        return result

    def get(self, key: str) -> str | None:
        return self._call("get", key)  # type: ignore[no-any-return]

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._call("set", key, value, ttl)

    def set_nx(self, key: str, value: str, ttl: float | None = None) -> bool:
        return self._call("set_nx", key, value, ttl)  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def delete_if(self, key: str, value: str) -> bool:
        return self._call("delete_if", key, value)  # type: ignore[no-any-return]

    def incr(self, key: str, ttl: float | None = None) -> int:
        return self._call("incr", key, ttl)  # type: ignore[no-any-return]

    def set_nx_get(self, key: str, value: str, ttl: float | None, reads: list[str]) -> tuple[bool, dict[str, str | None]]:
        return self._call("set_nx_get", key, value, ttl, reads)  # type: ignore[no-any-return]

    def batch(self, writes: list[Write]) -> None:
        self._call("batch", writes)

    def elapse(self, seconds: float) -> None:
        self.fallback.elapse(seconds)
        try:
            self.primary.elapse(seconds)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # Redis is down: its keys are out of reach anyway

    def flush(self) -> None:
        self.fallback.flush()
        self.primary.flush()

    def close(self) -> None:
        self.primary.close()


def make_kv(redis_url: str | None) -> KV:
    if not redis_url:
        return MemoryKV()
    return ResilientKV(RedisKV(redis_url))


@contextmanager
def kv_lock(kv: KV, name: str, ttl: float = 30.0, wait: float = 10.0) -> Iterator[bool]:
    """A lease lock: yields True when held (released on exit), False if it could not be had in `wait` s."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    got = kv.set_nx("lock:" + name, token, ttl)
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
        got = kv.set_nx("lock:" + name, token, ttl)
    try:
        yield got
    finally:
        if got:
            kv.delete_if("lock:" + name, token)
