"""What every `houqin` command group shares: a runtime on a migrated database, failing with a message, CSV input."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import typer
from sqlmodel import Session

from bot.config import Settings
from bot.runtime import Runtime
from handlers.text import normalise


def runtime() -> Runtime:
    """A Runtime for one CLI command: migrated database, no background services."""
    rt = Runtime(Settings())
    rt.db.migrate()
    return rt


def fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code=1)


def read_csv(file: Path) -> list[list[str]]:
    """A CSV file as rows of normalised cells; UTF-8 (with or without BOM) or GB18030, as Excel saves it."""
    if not file.exists():
        fail(f"文件不存在：{file}")
    raw = file.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        fail("无法识别文件编码，请保存为 UTF-8 CSV")
    return [[normalise(c) for c in row] for row in csv.reader(io.StringIO(text))]


def import_csv(file: Path, counted: str,
               load: Callable[[Session, list[list[str]], datetime], tuple[int, list[str]]]) -> None:
    """An import whose bad rows are reported by line number while the rest goes in: `load(session, rows, now)`
    returns how many went in and the errors; `counted` names them with their measure word (`个点位`)."""
    rows = read_csv(file)
    rt = runtime()
    with rt.db.session() as s:
        n, errors = load(s, rows, rt.clock.now())
    for e in errors:
        typer.echo(e, err=True)
    typer.echo(f"导入 {n} {counted}，{len(errors)} 行有误。")
