"""Benchmark: `报修` one-liners through the real server on PostgreSQL, next to the `帮助` path.

Starts `uvicorn bot.app:app` (one worker) as a subprocess on a bench database of its own, binds a teacher
with `绑定 <邀请码>`, then sends signed plaintext-mode messages from N concurrent clients for a fixed time:
first `帮助` (routing, no writes), then `报修 <地点> <描述>` (a ticket, its history row, auto-assignment to the
electrician, the worker's outbox row). Reports requests/second and latency percentiles for each, and checks
that every 200 reply of the 报修 phase left exactly one ticket.

    .venv/bin/python -m bench.repair [--seconds 10] [--concurrency 32] [--client raw|httpx] [--db-url …]

The default client is bench/loadgen.py's raw asyncio one (keep-alive HTTP/1.1, ~0.5 ms of CPU a request);
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
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402  (after the sys.path line)
from tests.support import sha1_sign, xml_of  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/houqin_bench_repair"
TOKEN = "bench-token"
APP_ID = "wxbench000000000"
TEACHER_OPENID = "o_bench_teacher"
PLACES = ("教学楼301", "实验楼二楼", "行政楼105", "图书馆三楼", "食堂后厨")
FAULTS = ("灯不亮", "插座没电", "开关坏了", "空调不制冷", "灯管闪烁")


def prepare_database(url: str) -> None:
    """Create the bench database if needed, give it a clean schema and migrate it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    u = make_url(url)
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()

    from storage.db import Database

    db = Database(url)
    db.migrate()
    db.dispose()


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # one worker: the in-process KV store is the documented set-up
    env.update(
        DATABASE_URL=url, WECHAT_TOKEN=TOKEN, WECHAT_APP_ID=APP_ID, WECHAT_AES_KEY="", SCHEDULER="off",
        SENDER="off", WECHAT_API_BASE_URL="http://127.0.0.1:9", HOUQIN_ENV="development", PYTHONPATH=str(ROOT),
    )
    cmd = [sys.executable, "-m", "uvicorn", "bot.app:app", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, cwd=str(ROOT), env=env)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


_msgids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def signed(openid: str, text: str) -> tuple[dict[str, str], bytes]:
    ts, nonce = str(int(time.time())), str(next(_msgids))
    params = {"timestamp": ts, "nonce": nonce, "signature": sha1_sign(TOKEN, ts, nonce)}
    body = xml_of({"ToUserName": "gh_bench", "FromUserName": openid, "CreateTime": int(ts), "MsgType": "text",
                   "Content": text, "MsgId": next(_msgids)})
    return params, body.encode()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show where a 2-core box spends its time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


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
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        return (f"{self.name:<6} {len(lat):>6} ok {self.errors:>4} err  {len(lat) / self.elapsed:7.1f} req/s   "
                f"p50 {pct(0.50):6.1f} ms  p90 {pct(0.90):6.1f} ms  p99 {pct(0.99):6.1f} ms  "
                f"max {lat[-1] * 1000:6.1f} ms  mean {statistics.fmean(lat) * 1000:6.1f} ms\n"
                + "         CPU ms per request: "
                + "  ".join(f"{k} {v * 1000 / len(lat):.2f}" for k, v in self.cpu.items()))


async def run_phase(client: httpx.AsyncClient, name: str, texts: list[str], seconds: float,
                    concurrency: int, expect: str, server_pid: int, database: str) -> Phase:
    phase = Phase(name)
    server0, pg0, client0 = cpu_seconds(server_pid), postgres_cpu(database), time.process_time()
    deadline = time.monotonic() + seconds
    counter = itertools.count()

    async def one_client() -> None:
        while time.monotonic() < deadline:
            text = texts[next(counter) % len(texts)]
            params, body = signed(TEACHER_OPENID, text)
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
    pg1 = postgres_cpu(database)
    phase.cpu = {
        "server": cpu_seconds(server_pid) - server0,
        "postgres": sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()),
        "client": time.process_time() - client0,
    }
    return phase


async def run_phase_raw(port: int, name: str, texts: list[str], seconds: float, concurrency: int, expect: str,
                        server_pid: int, database: str) -> Phase:
    """The same phase driven by loadgen's raw asyncio client (plaintext mode: the signature covers only the
    token, timestamp and nonce, so one signed path serves every request)."""
    phase = Phase(name)
    server0, pg0, client0 = cpu_seconds(server_pid), postgres_cpu(database), time.process_time()
    ts, nonce = str(int(time.time())), "bench"
    path = f"/wechat?signature={sha1_sign(TOKEN, ts, nonce)}&timestamp={ts}&nonce={nonce}"
    counter = itertools.count()

    def body() -> bytes:
        return loadgen.text_message(TEACHER_OPENID, texts[next(counter) % len(texts)])

    errors: list[int] = []
    start = time.monotonic()
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(loadgen._worker("127.0.0.1", port, path, body, stop, phase.latencies, errors,
                                           expect.encode()) for _ in range(concurrency)))
    phase.elapsed = time.monotonic() - start
    phase.errors = len(errors)
    pg1 = postgres_cpu(database)
    phase.cpu = {
        "server": cpu_seconds(server_pid) - server0,
        "postgres": sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()),
        "client": time.process_time() - client0,
    }
    return phase


async def bench(base: str, url: str, code: str, seconds: float, concurrency: int,
                server_pid: int, client_kind: str = "raw") -> tuple[Phase, Phase, int]:
    from sqlalchemy.engine import make_url

    dbname = str(make_url(url).database)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        params, body = signed(TEACHER_OPENID, f"绑定 {code}")
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
                    help="raw: bench/loadgen.py's asyncio client (cheap); httpx: the httpx client (~3 ms CPU/request)")
    args = ap.parse_args()

    prepare_database(args.db_url)
    code = seed(args.db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(args.db_url, port)
    try:
        wait_ready(base, proc)
        help_phase, repair_phase, made = asyncio.run(
            bench(base, args.db_url, code, args.seconds, args.concurrency, proc.pid, args.client))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"uvicorn 1 worker, PostgreSQL, in-process KV; {args.concurrency} concurrent {args.client} clients, "
          f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs shared by server and client")
    print(help_phase.report())
    print(repair_phase.report())
    print(f"tickets created in the 报修 phase: {made} (successful replies: {len(repair_phase.latencies)})")


if __name__ == "__main__":
    main()
