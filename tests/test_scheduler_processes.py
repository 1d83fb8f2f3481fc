"""Exactly once, on time, across processes: two real `uvicorn bot.app:app` servers, each running its own
scheduler and outbox sender, on one PostgreSQL database and one Redis. A reminder `30秒后 @门卫` set through
one of them reaches each guard exactly once at the fake WeChat server, within a second of its due time.

Always PostgreSQL and Redis, whatever TEST_DB says: the test creates (and drops) a database of its own.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from bot.sandbox.fakewechat import FakeWeChat
from storage import outbox as ob
from storage import people
from storage import reminder as rem
from storage.db import Database
from tests.support import sha1_sign, xml_of

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOKEN, APP_ID, SECRET = "proc-token", "wx5c5c5c5c5c5c5c5c", "proc-secret"
PG_SERVER = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test").rsplit("/", 1)[0]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TZ = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"houqin_sched_{os.getpid()}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def test_two_servers_push_once_per_guard_on_time(pg_url: str, tmp_path: Path) -> None:
    import redis

    db = Database(pg_url)
    db.migrate()
    now = datetime.now(TZ).replace(tzinfo=None)
    guards = {"孙门卫": "o_proc_guard_1", "周门卫": "o_proc_guard_2"}
    with db.session() as s:
        for name, role, openid in [("赵主任", "admin", "o_proc_admin"), *[(n, "guard", o) for n, o in guards.items()]]:
            p = people.create_person(s, name, [role], now=now)
            p.openid, p.bound_at, p.last_inbound_at = openid, now, now
            s.add(p)
    client = redis.Redis.from_url(REDIS_URL)
    stale = list(client.scan_iter("houqin:*"))
    if stale:
        client.delete(*stale)

    fake = FakeWeChat(appid=APP_ID, secret=SECRET).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "HOUQIN_"))}
    env.update(DATABASE_URL=pg_url, REDIS_URL=REDIS_URL, WECHAT_API_BASE_URL=fake.base_url, WECHAT_TOKEN=TOKEN,
               WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=SECRET, WECHAT_AES_KEY="", SCHEDULER="on", SENDER="on",
               HOUQIN_CONFIG="", TIMEZONE="Asia/Shanghai", PYTHONPATH=str(ROOT))
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"server{i}.log" for i in range(2)]
    procs = [start_server(port, env, log) for port, log in zip(ports, logs)]
    try:
        for port, proc, log in zip(ports, procs, logs):
            wait_ready(port, proc, log)
        reply = say(ports[0], "o_proc_admin", "提醒 30秒后 巡查东门 @门卫")
        assert "TX1" in reply and "共 2 人" in reply, reply
        with db.session() as s:
            r = s.exec(select(rem.Reminder)).one()
            assert r.next_due_at is not None
            due = r.next_due_at.replace(tzinfo=TZ).timestamp()
        offset = time.time() - time.monotonic()  # Call.at is this process's monotonic clock
        deadline = due + 5
        while time.time() < deadline:
            got = {o: fake.messages_to(o) for o in guards.values()}
            if all(got.values()):
                break
            time.sleep(0.05)
        time.sleep(2)  # long enough for a second process's duplicate, were there one
        arrivals = {o: [c.at + offset - due for c in fake.messages_to(o)] for o in guards.values()}
        print(f"\nreminder due at {datetime.fromtimestamp(due, TZ):%H:%M:%S.%f}; "
              f"arrival after due (s): {arrivals}")
        for openid, lags in arrivals.items():
            assert len(lags) == 1, f"{openid} got {len(lags)} pushes: {fake.texts_to(openid)}"
            assert 0 <= lags[0] < 1.0, f"{openid}: pushed {lags[0]:.3f} s after its due time"
            assert "巡查东门" in fake.texts_to(openid)[0]
        assert len(fake.sends()) == 2  # nobody else was told anything
        with db.session() as s:
            rows = s.exec(select(ob.OutboxMessage)).all()
            occurrences = s.exec(select(rem.ReminderOccurrence)).all()
        assert len(occurrences) == 1 and len(rows) == 2 and all(r.state == ob.SENT for r in rows)
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
