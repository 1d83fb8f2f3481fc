"""Benchmark: 10,000 reminder occurrences due within one minute, fired by a real `houqin scheduler` process.

Seeds a bench database with N bound people and 10,000 one-off reminders whose due times are spread evenly
over one minute (starting a few seconds after the scheduler is up), then runs `houqin scheduler` (SENDER=off,
so the outbox only fills) as a subprocess and watches the outbox from this process. Reports:

* lag from each reminder's due time to its outbox row being *visible* (committed), as seen by a poller that
  looks every 20 ms (so this includes up to 20 ms of polling delay): p50, p99, max;
* lag as the scheduler itself records it (outbox created_at − due, i.e. the tick's "now"): p50, p99;
* the scheduler process's memory: RSS idle (before the first due time) and peak.

    .venv/bin/python -m bench.reminders [--count 10000] [--seconds 60] [--people 1000] [--db-url …] [--redis-url …]

The database URL comes from --db-url, else BENCH_DATABASE_URL, else a local `houqin_bench_reminders`
PostgreSQL database (created if missing; its public schema is dropped and recreated each run).
Target: p99 lag under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, percentile, prepare_database, server_env, stop  # noqa: E402  (after the sys.path line)

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/houqin_bench_reminders"
TZ = ZoneInfo("Asia/Shanghai")


def seed(url: str, count: int, people_n: int, first_due: datetime, seconds: float) -> None:
    """N bound teachers and `count` one-off reminders, each to one of them, due evenly over `seconds`."""
    from sqlalchemy import insert

    from storage.db import Database
    from storage.people import Person, PersonRole
    from storage.reminder import Reminder

    db = Database(url)
    now = datetime.now(TZ).replace(tzinfo=None)
    with db.session() as s:
        s.execute(insert(Person), [{"name": f"老师{i}", "openid": f"o_bench_{i}", "subscribed": True, "categories": "",
                                    "active": True, "created_at": now, "bound_at": now} for i in range(people_n)])
        ids = [row[0] for row in s.execute(Person.__table__.select().with_only_columns(Person.id))]  # type: ignore[attr-defined]
        s.execute(insert(PersonRole), [{"person_id": pid, "role": "teacher"} for pid in ids])
        step = seconds / count
        rows = []
        for i in range(count):
            due = first_due + timedelta(seconds=i * step)
            pid = ids[i % len(ids)]
            rows.append({"creator_id": pid, "text": f"基准提醒 {i}", "targets": json.dumps([f"person:{pid}"]),
                         "target_label": "", "kind": "once", "school_days_only": False, "first_due_at": due,
                         "next_due_at": due, "needs_receipt": False, "source": "chat", "state": "active",
                         "created_at": now})
        for k in range(0, len(rows), 2000):
            s.execute(insert(Reminder), rows[k:k + 2000])
    db.dispose()


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values: list[float], p: float) -> float:
    return percentile(sorted(values), p / 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--db-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    ap.add_argument("--redis-url", default=None, help="shared KV for the scheduler (default: in-process)")
    ap.add_argument("--lead", type=float, default=8.0, help="seconds from start to the first due time")
    args = ap.parse_args()

    from sqlalchemy import create_engine, text

    from storage.db import normalise_url

    url = normalise_url(args.db_url)
    print(f"preparing {url} …", flush=True)
    prepare_database(url)
    first_due = datetime.now(TZ).replace(tzinfo=None) + timedelta(seconds=args.lead + 5)
    seed(url, args.count, args.people, first_due, args.seconds)
    first_epoch = first_due.replace(tzinfo=TZ).timestamp()
    print(f"seeded {args.count} reminders due over {args.seconds:.0f} s from {first_due:%H:%M:%S}", flush=True)

    env = server_env(DATABASE_URL=url, SENDER="off", SCHEDULER="on", TIMEZONE="Asia/Shanghai",
                     **({"REDIS_URL": args.redis_url} if args.redis_url else {}))
    log = Path(os.environ.get("BENCH_LOG", os.devnull)).open("wb")  # noqa: SIM115 - open while the child runs
    proc = subprocess.Popen([sys.executable, "-c", "from bot.cli import main; main()", "scheduler"], cwd=str(ROOT),
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    engine = create_engine(url)
    seen_lag: list[float] = []
    tick_lag: list[float] = []
    rss_idle = rss_peak = 0
    last_id = 0
    deadline = first_epoch + args.seconds + 30
    try:
        while time.time() < deadline and len(seen_lag) < args.count:
            if proc.poll() is not None:
                raise SystemExit(f"scheduler exited with {proc.returncode} (BENCH_LOG=file keeps its log)")
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, data, created_at FROM outboxmessage WHERE id > :last ORDER BY id"),
                                    {"last": last_id}).all()
            seen = time.time()
            for rid, data, created in rows:
                last_id = max(last_id, rid)
                due = datetime.fromisoformat(json.loads(data)["due"])
                due_epoch = due.replace(tzinfo=TZ).timestamp()
                seen_lag.append(seen - due_epoch)
                tick_lag.append((created - due).total_seconds())
            rss = rss_kb(proc.pid)
            if time.time() < first_epoch:
                rss_idle = max(rss_idle, rss)
            rss_peak = max(rss_peak, rss)
            time.sleep(0.02)
    finally:
        stop([proc], timeout=15)
        log.close()
        with engine.connect() as conn:
            occurrences = conn.execute(text("SELECT count(*) FROM reminderoccurrence")).scalar_one()
            outbox_rows = conn.execute(text("SELECT count(*) FROM outboxmessage")).scalar_one()
        engine.dispose()

    print(f"\n{args.count} occurrences due within {args.seconds:.0f} s; backend {url.split(':', 1)[0]}, "
          f"KV {'Redis' if args.redis_url else 'in-process'}")
    print(f"outbox rows {outbox_rows}, occurrences {occurrences} (expected {args.count} each)")
    print(f"lag due → outbox row visible (20 ms polling): p50 {pct(seen_lag, 50) * 1000:.0f} ms, "
          f"p99 {pct(seen_lag, 99) * 1000:.0f} ms, max {max(seen_lag, default=float('nan')) * 1000:.0f} ms, "
          f"mean {statistics.fmean(seen_lag) * 1000 if seen_lag else float('nan'):.0f} ms")
    print(f"lag due → tick that fired it (created_at): p50 {pct(tick_lag, 50) * 1000:.0f} ms, "
          f"p99 {pct(tick_lag, 99) * 1000:.0f} ms")
    print(f"scheduler process RSS: idle {rss_idle / 1024:.1f} MB, peak {rss_peak / 1024:.1f} MB")
    ok = len(seen_lag) == args.count and outbox_rows == args.count and pct(seen_lag, 99) < 1.0
    print("target p99 < 1 s:", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
