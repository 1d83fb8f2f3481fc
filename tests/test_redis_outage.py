"""Redis going away mid-run: no 500s, still exactly once (the database decides), degraded state logged,
recovery by itself.

Uses a private redis-server on its own port so the shared one is never stopped.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time

from fastapi.testclient import TestClient
from sqlmodel import col, select

from bot.app import create_app
from bot.runtime import Runtime
from storage import people
from storage.kv import RedisKV, ResilientKV
from tests.support import Wx, xml_of
from tests.test_webhook import bind_teacher, temp_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int) -> subprocess.Popen:
    exe = shutil.which("redis-server")
    assert exe, "redis-server is needed for this test (Debian package redis-server)"
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("private redis-server did not start")


def counted(session) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.name for p in session.exec(select(people.Person).where(col(people.Person.name).startswith("计数")))]


def test_redis_stopped_and_restarted_mid_run(settings, clock, db, caplog):
    port = free_port()
    proc = start_redis(port)
    kv = ResilientKV(RedisKV(f"redis://127.0.0.1:{port}/0"))
    kv.retry_after = 0.2
    rt = Runtime(settings, clock=clock, kv=kv, db=db)
    openid = bind_teacher(rt)

    def count(ctx):  # type: ignore[no-untyped-def]
        """The effect is a record (a person named 计数N): what must happen once per message."""
        n = len(counted(ctx.session)) + 1
        people.create_person(ctx.session, f"计数{n}", ["teacher"], now=ctx.now)
        return f"计数{n}"

    try:
        with temp_command(rt, "计数", count), TestClient(create_app(runtime=rt, background=False)) as c:
            wx = Wx(c, settings)
            up = xml_of(wx.message(openid, "text", Content="计数", msgid=9001))
            assert wx.reply_text(wx.post_xml(up)) == "计数1"
            assert wx.reply_text(wx.post_xml(up)) == "计数1"  # retry: same reply, not run again
            assert kv.degraded is False

            proc.kill()
            proc.wait()
            with caplog.at_level(logging.ERROR, logger="houqin.kv"):
                down = xml_of(wx.message(openid, "text", Content="计数", msgid=9002))
                r1, r2 = wx.post_xml(down), wx.post_xml(down)
            assert r1.status_code == 200 and r2.status_code == 200
            assert wx.reply_text(r1) == "计数2" and wx.reply_text(r2) == "计数2"
            assert kv.degraded is True
            assert any("Redis unreachable" in r.message for r in caplog.records)

            proc = start_redis(port)
            time.sleep(0.3)
            back = xml_of(wx.message(openid, "text", Content="计数", msgid=9003))
            assert wx.reply_text(wx.post_xml(back)) == "计数3"
            assert kv.degraded is False
            assert kv.primary.get("msg:9003") == "done:计数3"  # the claim (now the reply) is in Redis again
            # The restarted Redis forgot 9001 and 9002: their retries are not run again, the database says so.
            assert wx.reply_text(wx.post_xml(up)) == "计数1"
            assert wx.reply_text(wx.post_xml(down)) == "计数2"
            with rt.db.session() as s:
                assert sorted(counted(s)) == ["计数1", "计数2", "计数3"]
    finally:
        proc.kill()
        proc.wait()
