"""Benchmark: CPU per message of the understanding layer, and of whole `帮助` / `报修` messages with and without it.

    .venv/bin/python bench/understand.py [--rounds 5]

Runs the corpus (tests/corpus/*.tsv) through `handlers.understand.decide` against the demo school on a
temporary SQLite file, timing each call with time.process_time (the layer's own CPU, including the few
queries it makes on the slow path: the lexicon's version check and the sender's open records). Then times
the router on `帮助` and `报修 …` with the layer on, and with it bypassed (the canonical path as before).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from handlers import base, understand  # noqa: E402
from handlers.base import Context, Inbound  # noqa: E402
from handlers.understand.plan import CANONICAL  # noqa: E402
from storage.clock import FrozenClock  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.kv import MemoryKV  # noqa: E402
from storage.people import sender_by_openid  # noqa: E402
from tests.demo_school import UNBOUND, build  # noqa: E402
from tests.school import openid_for  # noqa: E402
from tests.conftest import START  # noqa: E402
from tests.test_understand_corpus import load  # noqa: E402


class _Rt:
    def __init__(self, db: Database, clock: FrozenClock) -> None:
        self.db, self.clock = db, clock


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    clock = FrozenClock(START)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        build(_Rt(db, clock))  # type: ignore[arg-type]
        base.load_handlers()
        words = base.all_words()
        kv = MemoryKV()
        rows = [r for r in load() if r.intent != "skip" and r.sender not in UNBOUND and r.intent != "绑定"]
        fast: list[float] = []
        slow: list[float] = []
        with db.session() as s:
            actors = {r.sender: sender_by_openid(s, openid_for(r.sender))[0] for r in rows}
            for _ in range(args.rounds):
                for r in rows:
                    inbound = Inbound(openid=openid_for(r.sender), text=r.message)
                    ctx = Context(session=s, kv=kv, actor=actors[r.sender], inbound=inbound, now=clock.now())
                    t0 = time.process_time()
                    plan = understand.decide(ctx, r.message, words)
                    spent = time.process_time() - t0
                    (fast if plan.kind == CANONICAL else slow).append(spent)
            s.rollback()
        every = fast + slow
        print(f"corpus: {len(rows)} messages x {args.rounds} rounds")
        print(f"layer, all messages: {sum(every) / len(every) * 1e6:.0f} µs CPU/message")
        print(f"  fast path (canonical, {len(fast)}): {sum(fast) / max(len(fast), 1) * 1e6:.0f} µs")
        print(f"  understood ({len(slow)}): {sum(slow) / max(len(slow), 1) * 1e6:.0f} µs")
        slow.sort()
        print(f"  understood p50 {slow[len(slow) // 2] * 1e6:.0f} µs, p95 {slow[int(len(slow) * 0.95)] * 1e6:.0f} µs")
        _router(db, kv, clock)


def _router(db: Database, kv: MemoryKV, clock: FrozenClock) -> None:
    """Whole messages through the router: the layer on vs bypassed (as if every message were trusted)."""
    from bot.wechat.router import Router
    from handlers.base import Options

    router = Router(db, kv, Options(school_name="滨湖实验中学", secret_key="bench"))
    n = 200
    for label, text in (("帮助", "帮助"), ("报修", "报修 教学楼301 灯不亮"), ("报修 (everyday)", "教学楼301的灯不亮了")):
        for mode in ("layer", "bypass"):
            t0 = time.process_time()
            for i in range(n):
                inbound = Inbound(openid=openid_for("李梅"), text=text, extra={"n": i})
                if mode == "bypass":
                    token = understand._trusted.set(True)
                    try:
                        router.handle(inbound, clock.now())
                    finally:
                        understand._trusted.reset(token)
                else:
                    router.handle(inbound, clock.now())
            per = (time.process_time() - t0) / n * 1e6
            if not (mode == "bypass" and label.endswith("(everyday)")):
                print(f"router {label:16s} {mode:6s}: {per:.0f} µs CPU/message")


if __name__ == "__main__":
    main()
