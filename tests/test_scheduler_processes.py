"""Exactly once, on time, across processes: two real `uvicorn bot.app:app` servers, each running its own
scheduler and outbox sender, on one PostgreSQL database and one Redis, racing for the same due slots.

Every slot has many reminders due at the same instant, so both schedulers wake for it together (each times its
next tick to the earliest due reminder). Around them the test plays a third, misbehaving process, so that each
exactly-once guard has something to stop (jobs/scheduler.py, storage/reminder/firing.py):

* slot A, a plain race: every reminder goes out once, all fired by one tick (one process at a time: Redis lock);
* a stale write sets an already fired reminder back to its due time: it must not go out again (occurrence
  UNIQUE (reminder_id, due_at); without it the outbox's unique dedup key fails the whole tick);
* slot B: the third process holds one reminder's row locked across the due time (a slow tick): the servers
  skip that row and send the rest on time (FOR UPDATE SKIP LOCKED: no lock lets them take it, a lock without
  SKIP LOCKED makes them wait), and the third process then fires it itself, once;
* slot C: the third process holds the Redis tick lock across the due time: nothing goes out until it lets go;
* a replayed push with a used dedup key is refused by the outbox.

Always PostgreSQL and Redis, whatever TEST_DB says: the test creates (and drops) a schema of its own in the test
database, and deletes the Redis keys its servers made.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.sandbox.fakewechat import FakeWeChat
from jobs.scheduler import TICK_LOCK
from storage import outbox as ob
from storage import people
from storage import reminder as rem
from storage.db import Database
from storage.kv import RedisKV, kv_lock
from tests.support import scratch_schema, sha1_sign, xml_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOKEN, APP_ID, SECRET = "proc-token", "wx5c5c5c5c5c5c5c5c", "proc-secret"
PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TZ = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


@pytest.fixture
def pg_url() -> Iterator[str]:
    with scratch_schema(PG_URL, f"houqin_sched_{os.getpid()}") as url:
        yield url


@pytest.fixture
def redis_keys() -> Iterator[redis.Redis]:
    """The servers' Redis DB (their keys are under `houqin:`): emptied of them before the test and after it."""
    client = redis.Redis.from_url(REDIS_URL)

    def clean() -> None:
        keys = list(client.scan_iter("houqin:*"))
        if keys:
            client.delete(*keys)

    clean()
    try:
        yield client
    finally:
        clean()  # after the servers have stopped (the test stops them in its own finally)
        left = list(client.scan_iter("houqin:*"))
        client.close()
    assert left == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "bot.app:app", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on port {port} did not become ready:\n{log.read_text(errors='replace')}")


def say(port: int, openid: str, content: str) -> str:
    ts, nonce = str(int(time.time())), str(next(_ids))
    params = {"timestamp": ts, "nonce": nonce, "signature": sha1_sign(TOKEN, ts, nonce)}
    body = xml_of({"ToUserName": "gh_school", "FromUserName": openid, "CreateTime": int(ts), "MsgType": "text",
                   "Content": content, "MsgId": next(_ids)})
    res = httpx.post(f"http://127.0.0.1:{port}/wechat", params=params, content=body.encode(), timeout=10)
    assert res.status_code == 200, res.text
    return res.text


PER_SLOT = 30  # reminders due at the same instant, each to both guards
GUARDS = {"孙门卫": "o_proc_guard_1", "周门卫": "o_proc_guard_2"}


def sleep_until(at: datetime) -> None:
    time.sleep(max(0.0, (at - datetime.now(TZ).replace(tzinfo=None)).total_seconds()))


def local_now() -> datetime:
    return datetime.now(TZ).replace(tzinfo=None)


def test_two_servers_race_for_the_same_due_slots_and_push_each_reminder_once(
        pg_url: str, redis_keys: redis.Redis, tmp_path: Path) -> None:
    db = Database(pg_url)
    db.migrate()
    now = local_now()
    with db.session() as s:
        for name, role, openid in [("赵主任", "admin", "o_proc_admin"), *[(n, "guard", o) for n, o in GUARDS.items()]]:
            p = people.create_person(s, name, [role], now=now)
            p.openid, p.bound_at, p.last_inbound_at = openid, now, now
            s.add(p)

    fake = FakeWeChat(appid=APP_ID, secret=SECRET).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "HOUQIN_"))}
    env.update(DATABASE_URL=pg_url, REDIS_URL=REDIS_URL, WECHAT_API_BASE_URL=fake.base_url, WECHAT_TOKEN=TOKEN,
               WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=SECRET, WECHAT_AES_KEY="", SCHEDULER="on", SENDER="on",
               HOUQIN_CONFIG="", TIMEZONE="Asia/Shanghai", PYTHONPATH=str(ROOT), SEND_RATE_PER_SECOND="500")
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"server{i}.log" for i in range(2)]
    procs = [start_server(port, env, log) for port, log in zip(ports, logs)]
    try:
        for port, proc, log in zip(ports, procs, logs):
            wait_ready(port, proc, log)
        # One reminder through the webhook, as a person would set it; its due time is slot A's.
        reply = say(ports[0], "o_proc_admin", "提醒 6秒后 巡查0 @门卫")
        assert "TX1" in reply and "共 2 人" in reply, reply
        with db.session() as s:
            first = s.exec(select(rem.Reminder)).one()
            assert first.next_due_at is not None
            slot_a = first.next_due_at
            slot_b, slot_c = slot_a + timedelta(seconds=3), slot_a + timedelta(seconds=6)
            slots = {slot_a: [1]}
            for due in (slot_a, slot_b, slot_c):
                for _ in range(PER_SLOT - (due == slot_a)):
                    r = rem.create(s, None, due, f"巡查{sum(map(len, slots.values()))}", ["role:guard"], now=local_now())
                    slots.setdefault(due, []).append(r.id)
        assert local_now() < slot_a - timedelta(seconds=1), "setting up took too long to race for slot A"

        # Slot A: both servers wake for it; then a stale write puts one fired reminder back to its due time.
        sleep_until(slot_a + timedelta(seconds=1))
        stale_id = slots[slot_a][-1]
        with db.session() as s:
            stale = s.get(rem.Reminder, stale_id)
            assert stale is not None and stale.next_due_at is None and stale.state == rem.DONE
            stale.next_due_at, stale.state = slot_a, rem.ACTIVE
            s.add(stale)

        # Slot B: a slow third process holds one reminder's row across the due time, then fires it itself.
        held_id = slots[slot_b][0]
        sleep_until(slot_b - timedelta(seconds=0.5))
        with db.session() as s:
            s.exec(select(rem.Reminder).where(rem.Reminder.id == held_id).with_for_update()).one()
            sleep_until(slot_b + timedelta(seconds=1.5))
            with db.session() as peek:
                fired_b = peek.exec(select(rem.ReminderOccurrence.reminder_id)
                                    .where(rem.ReminderOccurrence.due_at == slot_b)).all()
            assert sorted(fired_b) == sorted(slots[slot_b][1:]), "the servers did not fire slot B around the held row"
            mine = rem.fire_due(s, local_now())
        assert (mine.sent, mine.outbox) == (1, 2), mine

        # Slot C: the third process holds the Redis tick lock across the due time; nothing goes out meanwhile.
        sleep_until(slot_c - timedelta(seconds=0.3))
        # Taken as a server takes it (a server's idle tick may hold it for a moment), held across the due time.
        with kv_lock(RedisKV(REDIS_URL), TICK_LOCK, ttl=10, wait=0.25) as held:
            assert held
            sleep_until(slot_c + timedelta(seconds=0.5))
            with db.session() as peek:
                early = peek.exec(select(rem.ReminderOccurrence).where(rem.ReminderOccurrence.due_at == slot_c)).all()
            released = local_now()
        assert early == [], "a server fired while another process held the tick lock"

        # Everything arrives, once: 2 pushes per reminder.
        expected = 2 * 3 * PER_SLOT
        deadline = time.monotonic() + 15
        while len(fake.sends()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # long enough for a duplicate from the other process, were there one
        for openid in GUARDS.values():
            got = sorted(t.split("\n")[0].removeprefix("【提醒】") for t in fake.texts_to(openid))
            assert got == sorted(f"巡查{n}" for n in range(3 * PER_SLOT)), f"{openid}: {len(got)} pushes"
        assert len(fake.sends()) == expected  # nobody else was told anything

        # A replayed push (a stale process re-queueing it) is refused by the outbox's dedup key.
        with db.session() as s:
            used = s.exec(select(ob.OutboxMessage.dedup_key).where(ob.OutboxMessage.dedup_key.isnot(None))).first()  # type: ignore[union-attr]
        assert used is not None
        with pytest.raises(IntegrityError), db.session() as s:
            ob.enqueue(s, None, "reminder", "重复", now=local_now(), openid="o_proc_guard_1", dedup_key=used)
            s.flush()

        with db.session() as s:
            occurrences = s.exec(select(rem.ReminderOccurrence)).all()
            rows = s.exec(select(ob.OutboxMessage)).all()
        assert len(rows) == expected and all(r.state == ob.SENT for r in rows)
        by_reminder: dict[int, list[rem.ReminderOccurrence]] = {}
        for occ in occurrences:
            by_reminder.setdefault(occ.reminder_id, []).append(occ)
        assert sorted(by_reminder) == sorted(i for ids in slots.values() for i in ids)
        assert all(len(o) == 1 for o in by_reminder.values()), "a reminder fired twice"
        lags = {due: [(by_reminder[i][0].fired_at - due).total_seconds() for i in ids] for due, ids in slots.items()}
        held_lag = lags[slot_b].pop(0)
        print(f"\nfired after due (s): A {max(lags[slot_a]):.3f}, B {max(lags[slot_b]):.3f} (held row {held_lag:.3f}),"
              f" C {min(lags[slot_c]):.3f}-{max(lags[slot_c]):.3f} (lock released at {(released - slot_c).total_seconds():.3f})")
        assert all(0 <= lag < 1.0 for lag in lags[slot_a] + lags[slot_b]), lags  # on time: within a second
        assert held_lag >= 1.5
        let_go = (released - slot_c).total_seconds()
        assert all(let_go <= lag < let_go + 1.0 for lag in lags[slot_c]), lags
        for due in (slot_a, slot_c):  # one tick fired each slot: the servers never ticked at once
            assert len({by_reminder[i][0].fired_at for i in slots[due]}) == 1, f"slot {due} fired by several ticks"
        for proc, log in zip(procs, logs):
            output = log.read_text(errors="replace")
            assert proc.poll() is None, output
            assert "scheduler started" in output, output  # both processes really did run a scheduler
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        fake.stop()
        db.dispose()
