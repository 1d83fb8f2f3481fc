"""bot/cpu.py: each server process on a core of its own (CPU_AFFINITY)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cpu import cores

REPO = Path(__file__).resolve().parent.parent


def test_the_setting_names_the_cores() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    assert cores("auto") == allowed
    assert cores("off") == [] and cores("") == [] and cores("OFF") == []
    assert cores(f"{allowed[0]}") == [allowed[0]]
    assert cores("9999") == []  # a core this machine does not have
    assert cores("a,b") == []  # nonsense: left to the kernel (and logged)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to spread over")
def test_two_workers_take_different_cores_and_every_thread_follows(tmp_path: Path) -> None:
    script = (
        "import os, sys, threading, time\n"
        "from pathlib import Path\n"
        "from bot.cpu import pin\n"
        "t = threading.Thread(target=time.sleep, args=(3,)); t.start()  # a thread started before pinning\n"
        "core = pin('auto', Path(sys.argv[1]))\n"
        "tids = [int(p.name) for p in Path('/proc/self/task').iterdir()]\n"
        "print(core, all(os.sched_getaffinity(tid) == {core} for tid in tids), flush=True)\n"
        "time.sleep(2)\n"
    )
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, text=True,
                                      stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)}))
        time.sleep(0.5)  # the first holds its core's lock before the second looks
    outs = [p.communicate(timeout=30)[0].split() for p in procs]
    assert all(out[1] == "True" for out in outs), outs
    assert outs[0][0] != outs[1][0], outs  # one core each


def test_no_place_for_the_lock_files_leaves_placement_to_the_kernel() -> None:
    from bot.cpu import pin

    before = os.sched_getaffinity(0)
    assert pin("auto", Path("/proc/no-such-folder/locks")) is None  # never an error at start-up
    assert os.sched_getaffinity(0) == before
