"""Benchmark: `报修` one-liners through the real server on PostgreSQL, next to the `帮助` path.

Starts `uvicorn bot.app:app` (one worker) as a subprocess on a bench database of its own, binds a teacher
with `绑定 <邀请码>`, then sends signed plaintext-mode messages from N concurrent clients for a fixed time:
first `帮助` (routing, no writes), then `报修 <地点> <描述>` (a ticket, its history row, auto-assignment to the
electrician, the worker's outbox row). Reports requests/second and latency percentiles for each, and checks
that every 200 reply of the 报修 phase left exactly one ticket.

    .venv/bin/python -m bench.repair [--seconds 10] [--concurrency 32] [--client raw|httpx] [--db-url …]

The default client is bench/common.py's raw asyncio one (keep-alive HTTP/1.1, ~0.5 ms of CPU a request);
`--client httpx` spends ~3 ms of CPU a request itself, on the same cores as the server.

The database URL comes from --db-url, else BENCH_DATABASE_URL, else a local `houqin_bench_repair` database
(created if missing; its public schema is dropped and recreated each run).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402  (after the sys.path line)
from bench.common import TOKEN, cpu_seconds, signed_params, text_message  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/houqin_bench_repair"
TEACHER_OPENID = "o_bench_teacher"
PLACES = ("教学楼301", "实验楼二楼", "行政楼105", "图书馆三楼", "食堂后厨")
FAULTS = ("灯不亮", "插座没电", "开关坏了", "空调不制冷", "灯管闪烁")


def seed(url: str) -> str:
    """An admin, an electrician (category 电, so every ticket is auto-assigned) and a teacher's invite code."""
    from datetime import datetime

    from storage import people
    from storage.db import Database

    db = Database(url)
    now = datetime.now()
    with db.session() as s:
        for name, role, cats, openid in (("赵主任", "admin", None, "o_bench_admin"),
                                          ("李师傅", "worker", ["电"], "o_bench_worker")):
            p = people.create_person(s, name, [role], now=now, categories=cats)
            p.openid, p.bound_at = openid, now
            s.add(p)
        _, invite = people.invite(s, "王老师", ["teacher"], now=now)
        code = invite.code
    db.dispose()
    return code


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    # one worker: the in-process KV store is the documented set-up (server_env leaves REDIS_URL out)
    env = common.server_env(DATABASE_URL=url, WECHAT_TOKEN=TOKEN, WECHAT_APP_ID=common.APP_ID, WECHAT_AES_KEY="",
                            SCHEDULER="off", SENDER="off", WECHAT_API_BASE_URL="http://127.0.0.1:9",
                            HOUQIN_ENV="development")
    return common.uvicorn("bot.app:app", port, env)


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds per PostgreSQL backend serving the bench database (others on the box are not ours)."""
    out: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                title = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres:") and f" {database} " in title:
                out[int(d.name)] = cpu_seconds(int(d.name))
    return out


class CpuMeter:
    """CPU seconds spent since it was made by the server, the bench database's PostgreSQL backends and this
    client."""

    def __init__(self, server_pid: int, database: str) -> None:
        self.server_pid, self.database = server_pid, database
        self.server, self.postgres, self.client = cpu_seconds(server_pid), postgres_cpu(database), time.process_time()

    def spent(self) -> dict[str, float]:
        postgres = postgres_cpu(self.database)
        return {"server": cpu_seconds(self.server_pid) - self.server,
                "postgres": sum(v - self.postgres.get(pid, 0.0) for pid, v in postgres.items()),
                "client": time.process_time() - self.client}


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # seconds of CPU per process group during the phase

    def report(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"{self.name}: no successful requests, {self.errors} errors"

        def pct(p: float) -> float:
            return common.percentile(lat, p) * 1000

        return (f"{self.name:<6} {len(lat):>6} ok {self.errors:>4} err  {len(lat) / self.elapsed:7.1f} req/s   "
                f"p50 {pct(0.50):6.1f} ms  p90 {pct(0.90):6.1f} ms  p99 {pct(0.99):6.1f} ms  "
                f"max {lat[-1] * 1000:6.1f} ms  mean {statistics.fmean(lat) * 1000:6.1f} ms\n"
                + "         CPU ms per request: "
                + "  ".join(f"{k} {v * 1000 / len(lat):.2f}" for k, v in self.cpu.items()))


async def run_phase(client: httpx.AsyncClient, name: str, texts: list[str], seconds: float,
                    concurrency: int, expect: str, server_pid: int, database: str) -> Phase:
    phase = Phase(name)
    meter = CpuMeter(server_pid, database)
    deadline = time.monotonic() + seconds
    counter = itertools.count()

    async def one_client() -> None:
        while time.monotonic() < deadline:
            text = texts[next(counter) % len(texts)]
            params, body = signed_params(), text_message(TEACHER_OPENID, text)
            t0 = time.perf_counter()
            try:
                r = await client.post("/wechat", params=params, content=body)
                ok = r.status_code == 200 and expect in r.text
            except httpx.HTTPError:
                ok = False
            dt = time.perf_counter() - t0
            if ok:
                phase.latencies.append(dt)
            else:
                phase.errors += 1

    start = time.monotonic()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    phase.elapsed = time.monotonic() - start
    phase.cpu = meter.spent()
    return phase


async def run_phase_raw(port: int, name: str, texts: list[str], seconds: float, concurrency: int, expect: str,
                        server_pid: int, database: str) -> Phase:
    """The same phase driven by bench.common's raw asyncio client (one signed path serves every request)."""
    phase = Phase(name)
    meter = CpuMeter(server_pid, database)
    path = common.wechat_path(signed_params())
    counter = itertools.count()

    def body() -> bytes:
        return text_message(TEACHER_OPENID, texts[next(counter) % len(texts)])

    errors: list[int] = []
    start = time.monotonic()
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(common.worker(port, path, body, stop, phase.latencies, errors, expect.encode())
                           for _ in range(concurrency)))
    phase.elapsed = time.monotonic() - start
    phase.errors = len(errors)
    phase.cpu = meter.spent()
    return phase


async def bench(base: str, url: str, code: str, seconds: float, concurrency: int,
                server_pid: int, client_kind: str = "raw") -> tuple[Phase, Phase, int]:
    from sqlalchemy.engine import make_url

    dbname = str(make_url(url).database)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        params, body = signed_params(), text_message(TEACHER_OPENID, f"绑定 {code}")
        r = await client.post("/wechat", params=params, content=body)
        assert "绑定成功" in r.text, r.text
        reports = [f"报修 {p} {f}" for p in PLACES for f in FAULTS]
        if client_kind == "raw":
            port = int(base.rsplit(":", 1)[1])
            phase = functools.partial(run_phase_raw, port)
        else:
            phase = functools.partial(run_phase, client)
        await phase("warmup", ["帮助", *reports], 1.0, concurrency, "CDATA", server_pid, dbname)
        help_phase = await phase("帮助", ["帮助"], seconds, concurrency, "您可以发送", server_pid, dbname)
        before = await asyncio.to_thread(count_tickets, url)
        repair_phase = await phase("报修", reports, seconds, concurrency, "已报修", server_pid, dbname)
        made = await asyncio.to_thread(count_tickets, url) - before
    return help_phase, repair_phase, made


def count_tickets(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM repairticket")).scalar_one())
    engine.dispose()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="raw: bench/common.py's asyncio client (cheap); httpx: the httpx client (~3 ms CPU/request)")
    args = ap.parse_args()

    common.prepare_database(args.db_url)
    code = seed(args.db_url)
    port = common.free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(args.db_url, port)
    try:
        common.wait_port(port, proc)
        help_phase, repair_phase, made = asyncio.run(
            bench(base, args.db_url, code, args.seconds, args.concurrency, proc.pid, args.client))
    finally:
        common.stop([proc])
    print(f"uvicorn 1 worker, PostgreSQL, in-process KV; {args.concurrency} concurrent {args.client} clients, "
          f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs shared by server and client")
    print(help_phase.report())
    print(repair_phase.report())
    print(f"tickets created in the 报修 phase: {made} (successful replies: {len(repair_phase.latencies)})")


if __name__ == "__main__":
    main()
