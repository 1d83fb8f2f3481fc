"""`houqin students import`: the student roster from a CSV file."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import import_csv
from storage import people

students_app = typer.Typer(help="学生名册", no_args_is_help=True)


@students_app.command("import")
def students_import(file: Path) -> None:
    """导入学生名册 CSV（学号,姓名,班级）；错误的行按行号报告，其余照常导入。"""
    import_csv(file, "名学生", lambda s, rows, now: people.import_students(s, rows))


def register(app: typer.Typer) -> None:
    app.add_typer(students_app, name="students")
