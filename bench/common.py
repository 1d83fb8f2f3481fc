"""What the benchmarks share: ports and server processes, a process's CPU time, a clean bench database, signed
WeChat requests and a small keep-alive HTTP/1.1 load generator (asyncio streams, no deps).

Each message carries a fresh MsgId so the dedup cache never short-circuits the work being measured. A benchmark
run as `python bench/x.py` puts the project root on sys.path before it imports this module.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import sha1_sign, xml_of  # noqa: E402

TOKEN = "bench-token"
APP_ID = "wxbench000000000"
HOST = "127.0.0.1"
_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000 + os.getpid() % 1000)


# --- ports and server processes ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """Until something listens on the port (uvicorn binds only once the app's start-up is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=0.3).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def server_env(**values: str) -> dict[str, str]:
    """This process's environment without our own settings (WECHAT_*, HOUQIN_*, REDIS_URL), plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "HOUQIN_")) and k != "REDIS_URL"}
    env.update(HOUQIN_CONFIG="", PYTHONPATH=str(ROOT))
    env.update(values)
    return env


def uvicorn(app: str, port: int, env: dict[str, str], prefix: Sequence[str] = (),
            **popen: object) -> subprocess.Popen[bytes]:
    """One uvicorn worker serving `app` on the port (not yet listening: see wait_port)."""
    cmd = [*prefix, sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port), "--workers", "1",
           "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, **popen)  # type: ignore[call-overload,no-any-return]


def stop(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """Terminate the processes (the last started first) and kill those that do not end in time."""
    procs = list(procs)
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


# --- CPU time of a process ----------------------------------------------------------------------------------

def _run_ns(task: Path) -> int:
    return int((task / "schedstat").read_text().split()[0])


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, all its threads (user + system): the sum of the threads' run time in
    /proc/<pid>/task/*/schedstat (nanoseconds; /proc/<pid>/stat counts in 10 ms ticks, too coarse for a
    bare app's few hundred messages). NaN when the process is gone."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return float("nan")
    for task in tasks:
        try:
            total += _run_ns(task)
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def loop_seconds(pid: int) -> float:
    """CPU time of the process's main thread alone: uvicorn's event loop (the rest is handler, inbox, sender
    and scheduler threads)."""
    try:
        return _run_ns(Path(f"/proc/{pid}/task/{pid}")) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


# --- the bench database -------------------------------------------------------------------------------------

def prepare_database(url: str) -> None:
    """A clean, migrated bench database: on PostgreSQL created if missing and its public schema dropped and
    recreated; on SQLite the file removed first."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from storage.db import Database

    u = make_url(url)
    if u.get_backend_name() == "postgresql":
        admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": u.database}).first():
                conn.execute(text(f'CREATE DATABASE "{u.database}"'))
        admin.dispose()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    elif u.database and Path(u.database).exists():
        Path(u.database).unlink()
    db = Database(url)
    db.migrate()
    db.dispose()


# --- signed requests ----------------------------------------------------------------------------------------

def text_message(openid: str, content: str) -> bytes:
    """The XML body of a plaintext-mode text message, with a fresh MsgId."""
    return xml_of({"ToUserName": "gh_bench", "FromUserName": openid, "CreateTime": int(time.time()),
                   "MsgType": "text", "Content": content, "MsgId": next(_ids)}).encode()


def signed_params(token: str = TOKEN) -> dict[str, str]:
    """timestamp, nonce (fresh) and signature of a POST /wechat; in plaintext mode the signature covers only
    these, so one signed path serves any number of messages."""
    ts, nonce = str(int(time.time())), str(next(_ids))
    return {"timestamp": ts, "nonce": nonce, "signature": sha1_sign(token, ts, nonce)}


def wechat_path(params: dict[str, str]) -> str:
    return "/wechat?" + urlencode(params)


def http_post(path: str, body: bytes) -> bytes:
    """A POST as raw HTTP/1.1 bytes (built before the clock starts)."""
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


# --- the load generator -------------------------------------------------------------------------------------

def percentile(values: Sequence[float], p: float) -> float:
    """The p-quantile (0..1) of sorted values, NaN for none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p))]


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                   expect: bytes | None) -> tuple[bool, float]:
    """Send one request on a keep-alive connection and read its response: (a 200 holding `expect`, seconds)."""
    t0 = time.perf_counter()
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    payload = await reader.readexactly(length)
    seconds = time.perf_counter() - t0
    return head.startswith(b"HTTP/1.1 200") and (expect is None or expect in payload), seconds


async def worker(port: int, path: str, body_fn: Callable[[], bytes], stop_at: float, lat: list[float],
                 errs: list[int], expect: bytes | None) -> None:
    """One connection posting `body_fn()` to the path until time.perf_counter() passes stop_at; the latency
    of each good reply goes to lat, a 1 for each other to errs."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < stop_at:
            ok, seconds = await exchange(reader, writer, http_post(path, body_fn()), expect)
            if ok:
                lat.append(seconds)
            else:
                errs.append(1)
    finally:
        writer.close()


@dataclass
class Result:
    label: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return percentile(sorted(self.latencies), p) * 1000

    def line(self) -> str:
        return (f"{self.label:<28} {self.rps:8.0f} req/s   p50 {self.pct(0.50):6.1f} ms   "
                f"p99 {self.pct(0.99):6.1f} ms   ({self.requests} ok, {self.errors} errors)")


def run(label: str, port: int, path: str, body_fn: Callable[[], bytes], seconds: float = 5.0,
        concurrency: int = 16, expect: bytes | None = None) -> Result:
    """`concurrency` connections posting for `seconds`."""
    async def main() -> Result:
        lat: list[float] = []
        errs: list[int] = []
        start = time.perf_counter()
        await asyncio.gather(*[worker(port, path, body_fn, start + seconds, lat, errs, expect)
                               for _ in range(concurrency)])
        return Result(label, len(lat), len(errs), time.perf_counter() - start, lat)

    return asyncio.run(main())
