"""Server CPU per message: the noise-proof measure of the hot path (issue 14).

One uvicorn worker on PostgreSQL + Redis — the multi-worker set-up, with the outbox sender and the scheduler
on as by default — and a bare ASGI app returning fixed XML, in one run on the same machine. For each path,
N signed messages from 16 keep-alive connections; the figure is the server process's own CPU time (user +
system, all threads, from /proc/<pid>/task/*/schedstat) divided by N, so the load generator and other
processes on the box do not count. Then p50/p99 at 32 connections for `帮助` and `报修`.

    .venv/bin/python -m bench.cpu [-n 2000] [--concurrency 16] [--db-url …] [--profile DIR]

Paths: bare ASGI app; `帮助` plaintext; `帮助` safe mode (AES); `报修 <地点> <描述>` creating a ticket (with its
history row, auto-assignment and the worker's outbox row, which the sender delivers to a fake WeChat API).
The database comes from --db-url, else BENCH_DATABASE_URL, else a local `houqin_bench_cpu` database (created
if missing, its schema dropped and recreated each run); Redis is a private redis-server on a free port.
`--profile DIR` also records each path with py-spy (CPU mode, all threads, native) into DIR/<path>.txt
(BENCH_PYSPY_MODE=--gil: only the thread holding the GIL). The table also shows how much of the CPU was the
event loop's thread (the rest: handler, inbox, sender and scheduler threads). `--quick`: only `帮助` and `报修` at
16 connections (`--safe` adds safe mode), to compare settings, e.g. `--env CPU_AFFINITY=off` or
`--env HANDLER_THREADS=2`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402  (after the sys.path line)
    APP_ID,
    TOKEN,
    cpu_seconds,
    exchange,
    free_port,
    http_post,
    loop_seconds,
    percentile,
    prepare_database,
    server_env,
    signed_params,
    stop,
    text_message,
    uvicorn,
    wait_port,
    wechat_path,
)
from tests.support import aes_encrypt, sha1_sign  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/houqin_bench_cpu"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TEACHER = "o_bench_teacher"


def seed(url: str) -> None:
    """An admin, an electrician (category 电, so every ticket is auto-assigned) and a bound teacher."""
    from storage import people
    from storage.db import Database

    db = Database(url)
    now = datetime.now()
    with db.session() as s:
        for name, role, cats, openid in (("赵主任", "admin", None, "o_bench_admin"),
                                          ("李师傅", "worker", ["电"], "o_bench_worker"),
                                          ("王老师", "teacher", None, TEACHER)):
            p = people.create_person(s, name, [role], now=now, categories=cats)
            p.openid, p.bound_at, p.last_inbound_at = openid, now, now
            s.add(p)
    db.dispose()


def request(text: str, safe: bool = False) -> bytes:
    """One signed POST /wechat, as raw HTTP/1.1 bytes (built before the clock starts)."""
    params, body = signed_params(), text_message(TEACHER, text)
    if safe:
        enc = aes_encrypt(body.decode(), AES_KEY, APP_ID)
        params.update(encrypt_type="aes", msg_signature=sha1_sign(TOKEN, params["timestamp"], params["nonce"], enc))
        body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()
    return http_post(wechat_path(params), body)


@dataclass
class Result:
    path: str
    n: int
    cpu_us: float
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    loop_us: float = 0.0  # of cpu_us, on the event loop's thread

    def row(self, bare_us: float | None) -> str:
        times = f"{self.cpu_us / bare_us:5.0f}" if bare_us else "    –"
        return (f"| {self.path:<24} | {self.cpu_us:9,.0f} | {self.loop_us:7,.0f} | {times} | "
                f"{self.n / self.seconds:7.0f} | {self.p50_ms:6.1f} | {self.p99_ms:6.1f} | {self.errors} |")


async def _drive(port: int, requests: list[bytes], concurrency: int, expect: bytes) -> tuple[list[float], int]:
    feed = iter(requests)
    lat: list[float] = []
    errors = 0

    async def conn() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for req in feed:
                ok, seconds = await exchange(reader, writer, req, expect)
                lat.append(seconds)
                errors += not ok
        finally:
            writer.close()

    await asyncio.gather(*[conn() for _ in range(concurrency)])
    return lat, errors


def measure(path: str, pid: int, port: int, make: Callable[[], bytes], n: int, concurrency: int,
            expect: bytes, warmup: int = 200, profile: Path | None = None) -> Result:
    asyncio.run(_drive(port, [make() for _ in range(warmup)], concurrency, expect))
    requests = [make() for _ in range(n)]
    spy = None
    if profile is not None:
        out = profile / (path.replace(" ", "_").replace("`", "") + ".txt")
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        mode = os.environ.get("BENCH_PYSPY_MODE", "--native").split()  # e.g. "--gil": only the GIL's holder
        spy = subprocess.Popen([exe, "record", "--pid", str(pid), *mode, "--format", "raw",
                                "--rate", "250", "-o", str(out)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    time.sleep(0.3)  # let the sender finish what the warm-up queued
    cpu0, loop0, t0 = cpu_seconds(pid), loop_seconds(pid), time.perf_counter()
    lat, errors = asyncio.run(_drive(port, requests, concurrency, expect))
    seconds = time.perf_counter() - t0
    cpu, loop = cpu_seconds(pid) - cpu0, loop_seconds(pid) - loop0
    if spy is not None:
        spy.send_signal(2)
        spy.wait(timeout=30)
    lat.sort()
    return Result(path, n, cpu * 1e6 / n, seconds, percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000,
                  errors, loop * 1e6 / n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=2000, help="messages per path")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--p99-concurrency", type=int, default=32)
    ap.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    ap.add_argument("--profile", type=Path, default=None, help="record each path with py-spy into this folder")
    ap.add_argument("--env", action="append", default=[], help="extra server setting NAME=value (repeatable)")
    ap.add_argument("--safe", action="store_true", help="with --quick: the safe-mode path too")
    ap.add_argument("--quick", action="store_true", help="only `帮助` and `报修` at 16 connections (to compare settings)")
    args = ap.parse_args()

    from bot.sandbox.fakewechat import FakeWeChat

    prepare_database(args.db_url)
    seed(args.db_url)
    redis_port = free_port()
    redis_proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fake = FakeWeChat(appid=APP_ID, secret="bench-secret").start()
    env = server_env(DATABASE_URL=args.db_url, REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", WECHAT_TOKEN=TOKEN,
                     WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET="bench-secret", WECHAT_AES_KEY=AES_KEY,
                     WECHAT_REQUIRE_SAFE_MODE="false", WECHAT_API_BASE_URL=fake.base_url, SCHEDULER="on",
                     SENDER="on")
    env.update(dict(e.split("=", 1) for e in args.env))
    log = Path(tempfile.mkstemp(prefix="bench-cpu-", suffix=".log")[1])
    procs: list[subprocess.Popen[bytes]] = [redis_proc]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    try:
        wait_port(redis_port, redis_proc)
        bare_port, app_port = free_port(), free_port()
        bare = uvicorn("bench.bare_app:app", bare_port, env)
        app = uvicorn("bot.app:app", app_port, env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        procs += [bare, app]
        wait_port(bare_port, bare)
        wait_port(app_port, app)
        n, c = args.n, args.concurrency
        places = itertools.cycle(("教学楼301", "实验楼二楼", "行政楼105", "图书馆三楼", "食堂后厨"))
        results = [
            measure("bare ASGI, fixed XML", bare.pid, bare_port, lambda: request("帮助"), n, c, b"<xml>",
                    profile=args.profile),
            measure("`帮助` plaintext", app.pid, app_port, lambda: request("帮助"), n, c, "报修".encode(),
                    profile=args.profile),
            *([] if args.quick and not args.safe else [
                measure("`帮助` safe mode (AES)", app.pid, app_port, lambda: request("帮助", safe=True), n, c,
                        b"<Encrypt>", profile=args.profile)]),
            measure("`报修` one-liner", app.pid, app_port, lambda: request(f"报修 {next(places)} 灯不亮"), n, c,
                    "已报修".encode(), profile=args.profile),
        ]
        wide = [] if args.quick else [
            measure(f"`帮助` at {args.p99_concurrency} conns", app.pid, app_port, lambda: request("帮助"), n,
                    args.p99_concurrency, "报修".encode()),
            measure(f"`报修` at {args.p99_concurrency} conns", app.pid, app_port,
                    lambda: request(f"报修 {next(places)} 灯不亮"), n, args.p99_concurrency, "已报修".encode()),
        ]
        bare_us = results[0].cpu_us
        print(f"\nserver CPU per message, {n} messages per path, {c} keep-alive connections, one uvicorn worker, "
              "PostgreSQL + Redis, sender and scheduler on\n")
        print("| path | server CPU µs/msg | of which event loop | × bare | msg/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            print(r.row(bare_us))
        print(f"\nlatency at {args.p99_concurrency} connections\n")
        print("| path | server CPU µs/msg | of which event loop | × bare | msg/s | p50 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|---|---|")
        for r in wide:
            print(r.row(bare_us))
        safe_extra = results[2].cpu_us - results[1].cpu_us if len(results) > 3 else 0.0
        print(f"\nsafe mode adds {safe_extra:,.0f} µs; pushes delivered to the fake WeChat API: {len(fake.sends())}")
        if args.profile:
            print(f"py-spy profiles in {args.profile}/")
    finally:
        stop(procs)
        fake.stop()


if __name__ == "__main__":
    main()
