"""`houqin scheduler`: reminders and periodic jobs in a process of their own, for SCHEDULER=off in the web workers."""

from __future__ import annotations

import logging
import signal
import threading

import typer

from bot.cli.common import runtime
from bot.wechat.sender import start_sender
from jobs.scheduler import start_scheduler


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def scheduler() -> None:
    """单独运行提醒与定时任务。

    Web 进程设 SCHEDULER=off 时使用；SENDER=on 时也在这里发送消息队列。
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rt = runtime()
    if rt.settings.sender == "on":
        rt.background.append(start_sender(rt))
    rt.background.append(start_scheduler(rt))
    typer.echo("调度器已启动（提醒与定时任务），Ctrl+C 退出。")
    wait_for_signal()
    rt.close()
    typer.echo("调度器已停止。")


def register(app: typer.Typer) -> None:
    if getattr(app, "_houqin_scheduler", False):  # tests may load the plugins more than once
        return
    app.command("scheduler")(scheduler)
    app._houqin_scheduler = True  # type: ignore[attr-defined]
