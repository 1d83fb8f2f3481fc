"""Benchmark: signed `帮助` messages through the real server (uvicorn, one worker) vs a bare ASGI app.

    .venv/bin/python bench/webhook.py [--seconds 5] [--concurrency 16] [--db sqlite|postgres]

Both servers run on this machine in the same run, driven by the same load generator (bench/common.py,
in this process); the ratio of throughputs is what the issue's target is about (>= 0.6, p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402 (after the sys.path line)
    TOKEN,
    run,
    server_env,
    signed_params,
    stop,
    text_message,
    uvicorn,
    wait_port,
    wechat_path,
)

OPENID = "o_bench_teacher"


def prepare(db_url: str) -> None:
    from storage import people
    from storage.clock import Clock
    from storage.db import Database

    db = Database(db_url)
    db.migrate()
    with db.session() as s:
        if people.actor_by_openid(s, OPENID) is None:
            p = people.create_person(s, "压测老师", ["teacher"], now=Clock().now())
            p.openid = OPENID
            s.add(p)
    db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/houqin_bench")
    ap.add_argument("--text", default="帮助", help="the message to send (e.g. '报修 教学楼301 灯不亮')")
    ap.add_argument("--expect", default="我的信息", help="a word every good reply contains")
    ap.add_argument("--redis-url", default=None, help="e.g. redis://127.0.0.1:6379/13 (default: in-process store)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="houqin-bench-")
    if args.db == "postgres":
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.pg_url.rsplit("/", 1)[1]],
                       stderr=subprocess.DEVNULL)
        db_url = args.pg_url
    else:
        db_url = f"sqlite:///{tmp}/bench.db"
    prepare(db_url)
    env = server_env(DATABASE_URL=db_url, WECHAT_TOKEN=TOKEN, SCHEDULER="off", SENDER="off",
                     WECHAT_API_BASE_URL="http://127.0.0.1:9", **({"REDIS_URL": args.redis_url} if args.redis_url else {}))

    path = wechat_path(signed_params())
    results = []
    for label, app, port, expect in [
        ("bare ASGI (fixed XML)", "bench.bare_app:app", 18081, b"ok"),
        (f"houqin {args.text[:8]} (signed)", "bot.app:app", 18082, args.expect.encode()),
    ]:
        proc = uvicorn(app, port, env)
        try:
            wait_port(port, proc)
            run(label, port, path, lambda: text_message(OPENID, args.text), seconds=1.0,
                concurrency=args.concurrency, expect=expect)  # warm-up
            results.append(run(label, port, path, lambda: text_message(OPENID, args.text),
                               seconds=args.seconds, concurrency=args.concurrency, expect=expect))
        finally:
            stop([proc])
    for r in results:
        print(r.line())
    bare, ours = results
    print(f"ratio houqin/bare = {ours.rps / bare.rps:.2f}   (db={args.db}, kv={'redis' if args.redis_url else 'memory'},"
          f" concurrency={args.concurrency}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
