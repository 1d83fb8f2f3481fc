"""Fan-out benchmark: one notification to 1,000 recipients through the real outbox sender to the fake WeChat
server with 20 ms added latency per call. The fake runs in a process of its own, as WeChat would (in the
same process its event loop would fight the sender's threads for the GIL and blur the timings). Prints messages per second, total time, and the peak send rate
(the most sends in any one-second window, as granted by the sender's limiter and as the server saw them)
against the configured limit.

    .venv/bin/python bench/fanout.py                    # SQLite in a temp dir, 200/s limit
    .venv/bin/python bench/fanout.py --rate 50          # the default production limit
    .venv/bin/python bench/fanout.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Target: 1,000 sends in under 10 s without exceeding the rate limit.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from sqlmodel import col, select

from bot.config import Settings
from bot.sandbox.fakewechat import FakeWeChat
from bot.runtime import Runtime
from bot.wechat.sender import OutboxSender
from storage import outbox
from storage.kv import MemoryKV
from storage.people import Person, PersonRole


def peak_per_window(times: list[float], window: float = 1.0) -> int:
    """The most events in any half-open window [t, t + window)."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


class RemoteFake:
    """`python -m bot.sandbox.fakewechat` in a child process, inspected over its /fake endpoints."""

    def __init__(self, latency: float) -> None:
        root = Path(__file__).resolve().parents[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.sandbox.fakewechat", "--port", "0", "--latency", str(latency)],
                                     cwd=root, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.base_url = line.split(" at ", 1)[1].split()[0]

    def arrivals(self) -> list[tuple[str, float]]:
        """(openid, arrival time) of every delivered message; time.monotonic() is system-wide on Linux."""
        with urllib.request.urlopen(self.base_url + "/fake/received") as res:
            calls = json.load(res)
        return [((c["body"] or {}).get("touser") or "", c["at"]) for c in calls
                if c["ok"] and "/message/" in c["path"]]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


class LocalFake:
    def __init__(self, latency: float) -> None:
        self.fake = FakeWeChat().start()
        self.fake.latency(latency)
        self.base_url = self.fake.base_url

    def arrivals(self) -> list[tuple[str, float]]:
        return [(c.touser or "", c.at) for c in self.fake.sends()]

    def stop(self) -> None:
        self.fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.020, help="seconds added to every fake API call")
    parser.add_argument("--rate", type=float, default=200.0, help="SEND_RATE_PER_SECOND for this run")
    parser.add_argument("--threads", type=int, default=16, help="sender threads")
    parser.add_argument("--batch", type=int, default=200, help="rows claimed per pass")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--same-process", action="store_true", help="run the fake in this process")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    tmp = tempfile.TemporaryDirectory()
    db_url = args.database_url or f"sqlite:///{tmp.name}/bench.db"
    fake = LocalFake(args.latency) if args.same_process else RemoteFake(args.latency)
    settings = Settings(wechat_app_id="wxbench", wechat_app_secret="bench-secret",
                        wechat_api_base_url=fake.base_url, database_url=db_url, send_rate_per_second=args.rate,
                        scheduler="off", sender="off", _env_file=None)  # type: ignore[call-arg]
    rt = Runtime(settings, kv=MemoryKV())
    rt.db.migrate()
    now = rt.clock.now()

    tag = uuid.uuid4().hex[:8]  # a database given with --database-url may hold earlier runs
    with rt.db.session() as s:  # the school: N bound teachers
        s.exec(insert(Person), params=[{"name": f"教师{i:04d}", "openid": f"o_{tag}_{i:06d}", "subscribed": True,
                                        "categories": "", "active": True, "created_at": now, "bound_at": now,
                                        "last_inbound_at": now} for i in range(args.recipients)])
        ids = list(s.exec(select(Person.id).where(col(Person.openid).startswith(f"o_{tag}_"))).all())
        s.exec(insert(PersonRole), params=[{"person_id": pid, "role": "teacher"} for pid in ids])
    with rt.db.session() as s:  # one notification to all of them, in one transaction
        queued = outbox.notify(s, ids, "reminder", "【提醒】明天 16:00 消防演练，请全体教职工准时到操场集合。", now=now)
    print(f"queued {queued} messages; fake WeChat at {fake.base_url} with {args.latency * 1000:.0f} ms latency; "
          f"limit {args.rate:g}/s; {args.threads} threads; database {rt.db.engine.url.get_backend_name()}; "
          f"fake in {'this' if args.same_process else 'its own'} process")

    granted: list[float] = []
    with OutboxSender(rt, threads=args.threads) as sender:
        acquire = sender.limiter.acquire

        def recorded() -> float:  # keep the grant times to measure the peak rate
            granted.append(acquire())
            return granted[-1]

        sender.limiter.acquire = recorded  # type: ignore[method-assign]
        sender.api.access_token()  # the token fetch is not part of the fan-out
        started = time.monotonic()
        while sender.run_once(limit=args.batch) > 0:
            pass
        elapsed = time.monotonic() - started

    sends = [(openid, at) for openid, at in fake.arrivals() if openid and openid.startswith(f"o_{tag}_")]
    delivered = len({openid for openid, _ in sends})
    with rt.db.session() as s:
        states: dict[str, int] = {}
        for state in s.exec(select(outbox.OutboxMessage.state)
                            .where(col(outbox.OutboxMessage.person_id).in_(ids))).all():
            states[state] = states.get(state, 0) + 1
    peak_sender = peak_per_window(granted)
    peak_server = peak_per_window([at for _, at in sends])
    rate = len(sends) / elapsed if elapsed else float("inf")
    print(f"delivered {delivered}/{queued} (rows: {states}) in {elapsed:.2f} s = {rate:.0f} messages/s")
    print(f"peak sends in any 1 s window: {peak_sender} started by the sender, {peak_server} arrived at the server; "
          f"limit {args.rate:g}/s")
    ok_time = elapsed < 10.0 or args.recipients != 1000
    ok_rate = max(peak_sender, peak_server) <= max(1, int(args.rate))
    ok_all = delivered == queued == len(sends) and states.get("sent") == queued
    print(f"target 1,000 in < 10 s: {'OK' if ok_time else 'MISSED'}; "
          f"rate limit respected: {'OK' if ok_rate else 'EXCEEDED'}; all delivered once: {'OK' if ok_all else 'NO'}")
    fake.stop()
    rt.db.dispose()
    tmp.cleanup()
    return 0 if ok_time and ok_rate and ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
