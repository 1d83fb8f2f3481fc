"""One CPU per server process (CPU_AFFINITY, default `auto`).

A worker is one Python process: its event loop, handler threads, sender and scheduler take turns holding the
GIL, and every message passes it between the event loop and a handler thread twice. When the kernel runs those
threads on different cores, each hand-over wakes a thread on another core (an inter-processor wake-up, the
GIL's cache lines moving across): measured on 2 cores, that was a third of a `帮助`'s CPU and of a `报修`'s
(bench/cpu.py: 880 → 460 µs and 2,540 → 1,790 µs per message pinned to one core, with twice the throughput).
Pinning a worker to one core costs it nothing it could use — only one of its threads runs Python at a time.

`auto` spreads the workers of one machine over its cores: each takes the first core whose lock file
(`<tmp>/houqin-cpu-<uid>/cpu-<n>.lock`, held for the process's life) is free, so `houqin serve --workers 2` on 2 cores
gives each its own; more workers than cores share them round-robin. `off` leaves placement to the kernel; a
comma-separated list (`2,3`) gives the cores to spread over.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger("houqin")

_held: list[IO[bytes]] = []  # the lock file of this process's core, open for as long as it lives


def cores(setting: str) -> list[int]:
    """The cores to spread over: `auto` → every core this process may use; `2,3` → those; `off` → none."""
    value = setting.strip().lower()
    if value in ("off", "no", "false", ""):
        return []
    if not hasattr(os, "sched_getaffinity"):
        return []
    allowed = sorted(os.sched_getaffinity(0))
    if value == "auto":
        return allowed
    try:
        wanted = [int(part) for part in value.replace("，", ",").split(",") if part.strip()]
    except ValueError:
        log.warning("CPU_AFFINITY=%r is not auto, off or a list of cores: left to the kernel", setting)
        return []
    return [c for c in wanted if c in allowed]


def pin(setting: str, lock_dir: Path | None = None) -> int | None:
    """Pin this process to one core per CPU_AFFINITY; returns the core (None: not pinned)."""
    if not hasattr(os, "sched_setaffinity"):
        return None  # not Linux: left to the system
    choices = cores(setting)
    if len(choices) < 2 and setting.strip().lower() == "auto":
        return None  # one core: nothing to choose
    if not choices:
        return None
    chosen = None
    try:  # this user's own folder: another user's lock files (or a leftover of root's) never block a start
        directory = lock_dir or Path(tempfile.gettempdir()) / f"houqin-cpu-{os.getuid()}"
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        log.warning("CPU_AFFINITY: no folder for the lock files (%s): left to the kernel", exc)
        return None
    for core in choices:
        try:
            handle = (directory / f"cpu-{core}.lock").open("ab")
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _held.append(handle)
        chosen = core
        break
    if chosen is None:  # more workers than cores: share them
        chosen = choices[os.getpid() % len(choices)]
    try:
        for task in Path("/proc/self/task").iterdir():  # every thread (a thread's affinity is its own on Linux)
            try:
                os.sched_setaffinity(int(task.name), {chosen})
            except (OSError, ValueError):
                pass  # a thread that ended meanwhile
        os.sched_setaffinity(0, {chosen})  # the caller's (and the threads it starts later)
    except OSError as exc:
        log.warning("CPU_AFFINITY: could not pin to CPU %d (%s): left to the kernel", chosen, exc)
        return None
    log.info("this worker runs on CPU %d (CPU_AFFINITY=%s)", chosen, setting)
    return chosen
