"""What every `houqin` command group shares: a runtime on a migrated database, failing with a message, CSV input."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import NoReturn

import typer

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
