"""What the browser tests share: a `houqin` server as its own process, headless Chromium, the screenshot folder.

A helper module, not a conftest: only the browser tests import it (their fixtures stay in their own files, each
a thin wrapper around what is here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str  # http://127.0.0.1:<port>
    log: IO[str]  # what the process printed (stdout and stderr), open for reading

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


@contextmanager
def houqin(command: str, *args: str, data: Path, cwd: Path, env: dict[str, str]) -> Iterator[Server]:
    """`houqin <command> --port <free port> <args>` as its own process, once it answers /healthz; stopped after.

    Its output goes to `data/server.log`; if it exits or stays silent for 60 s the test fails with that output.
    """
    port = free_port()
    log = (data / "server.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", command, "--port", str(port), *args],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"houqin {command} exited with {proc.returncode}:\n{server.output()}")
            try:
                if httpx.get(server.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"houqin {command} did not answer within 60 s:\n{server.output()}")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright; missing, the test fails (it does not skip)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (the browser tests need it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def screenshot_dir(tmp_path: Path) -> Path:
    """$HOUQIN_SCREENSHOTS when set (how docs/*.png are made), else the test's temporary directory."""
    target = os.environ.get("HOUQIN_SCREENSHOTS")
    path = Path(target) if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path
