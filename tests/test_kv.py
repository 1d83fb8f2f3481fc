"""The KV store: the same behaviour in-process and on real Redis."""

import gc
import threading
import time

import pytest

from storage.kv import MemoryKV, RedisKV, ResilientKV, kv_lock
from tests.conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis", "resilient"])
def store(request):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield MemoryKV()
        return
    redis_kv = RedisKV(REDIS_URL, prefix="houqin-kvtest:")
    redis_kv.client.ping()  # fails loudly without Redis
    redis_kv.flush()
    yield redis_kv if request.param == "redis" else ResilientKV(redis_kv)
    redis_kv.flush()


def test_set_nx_get_claims_once_and_reads_in_the_same_step(store):
    store.set("dialog:o1", '{"name": "repair"}')
    got, values = store.set_nx_get("msg:1", "1", 60, ["dialog:o1", "dialog:o2"])
    assert got is True and values == {"dialog:o1": '{"name": "repair"}', "dialog:o2": None}
    again, _ = store.set_nx_get("msg:1", "1", 60, [])
    assert again is False


def test_ttl_incr_delete_if(store):
    store.set("k", "v", ttl=0.2)
    assert store.get("k") == "v"
    time.sleep(0.3)
    assert store.get("k") is None
    assert store.incr("n", ttl=60) == 1 and store.incr("n", ttl=60) == 2
    store.set("lock", "mine")
    assert store.delete_if("lock", "theirs") is False and store.delete_if("lock", "mine") is True


def test_lease_lock_is_exclusive(store):
    with kv_lock(store, "job", ttl=5, wait=0) as first, kv_lock(store, "job", ttl=5, wait=0) as second:
        assert first is True and second is False
    with kv_lock(store, "job", ttl=5, wait=0) as third:
        assert third is True


def test_expiries_follow_a_jump_of_the_clock(store):
    """What lets the frozen clock move dialogs, lock-outs and login limits (tests/test_time_windows.py)."""
    store.set("dialog", "d", ttl=600)
    store.incr("fails", ttl=900)
    store.set("forever", "f")
    store.elapse(599)
    assert store.get("dialog") == "d" and store.incr("fails", ttl=900) == 2
    store.elapse(2)
    assert store.get("dialog") is None and store.get("forever") == "f"
    assert store.set_nx("dialog", "again", ttl=600) is True
    store.elapse(300)
    assert store.get("fails") is None and store.get("dialog") == "again"


def test_a_threads_own_connection_dropped_by_redis_is_replaced_without_degrading() -> None:
    """Review finding: Redis restarted or dropped an idle connection; the next claim must not fall back to the
    in-process store (which would make the claims of this worker only)."""
    redis_kv = RedisKV(REDIS_URL, prefix="houqin-kvtest:")
    store = ResilientKV(redis_kv)
    redis_kv.flush()
    try:
        store.set_nx_get("msg:a", "1", 60, [])  # this thread's connection is made
        holder = redis_kv._local.holder
        holder.conn.send_command("CLIENT", "ID")
        redis_kv.client.execute_command("CLIENT", "KILL", "ID", holder.conn.read_response())  # Redis drops it …
        holder.used -= 60  # … while it sat idle
        got, _ = store.set_nx_get("msg:b", "1", 60, [])
        assert got is True and not store.degraded
        assert redis_kv.client.get("houqin-kvtest:msg:b") == "1"  # in Redis, not only in this process
    finally:
        redis_kv.flush()
        redis_kv.close()


def test_a_threads_connection_is_closed_when_the_thread_ends() -> None:
    redis_kv = RedisKV(REDIS_URL, prefix="houqin-kvtest:")
    try:
        def use() -> None:
            redis_kv.batch([("t", "1", 5)])

        threads = [threading.Thread(target=use) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gc.collect()
        assert len(redis_kv._holders) == 0  # each thread's connection went with it
    finally:
        redis_kv.flush()
        redis_kv.close()
