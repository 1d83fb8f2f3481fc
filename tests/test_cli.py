"""The `houqin` command line: invites, people, the student roster."""

from __future__ import annotations

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import _load_plugins, app
from storage import people

runner = CliRunner()
_load_plugins()


@pytest.fixture
def cli_env(db, database_url, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return db


def test_invite_prints_the_code_alone_on_the_last_line_and_it_binds(cli_env, wx):
    result = runner.invoke(app, ["invite", "张老师", "--role", "teacher"])
    assert result.exit_code == 0, result.output
    code = result.output.strip().splitlines()[-1]
    assert len(code) == 6 and code.isalnum()
    assert "绑定成功" in wx.text("o_cli", f"绑定 {code}")


def test_invite_head_teacher_with_class_and_chinese_roles(cli_env):
    result = runner.invoke(app, ["invite", "王老师", "--role", "班主任", "--class", "七（3）班"])
    assert result.exit_code == 0, result.output
    with cli_env.session() as s:
        klass = people.get_class(s, "七(3)班")
        assert klass is not None and klass.head_teacher_id is not None
        p = s.get(people.Person, klass.head_teacher_id)
        assert people.roles_of(s, p.id) == {"head_teacher", "teacher"}


def test_invite_refuses_unknown_role_and_parent_without_student(cli_env):
    bad = runner.invoke(app, ["invite", "某人", "--role", "校长夫人"])
    assert bad.exit_code == 1 and "未知角色" in bad.output
    parent = runner.invoke(app, ["invite", "李明家长", "--role", "parent"])
    assert parent.exit_code == 1 and "学号" in parent.output
    with cli_env.session() as s:
        assert s.exec(select(people.Person)).all() == []  # nothing half-written


def test_students_import_reports_bad_rows_and_keeps_good_ones(cli_env, tmp_path):
    f = tmp_path / "roster.csv"
    f.write_text("学号,姓名,班级\n2024001,李明,七(3)班\n2024002,,七(3)班\n2024003,王芳\n2024001,重复,七(1)班\n"
                 "2024004,赵强,七（1）班\n", encoding="utf-8")
    result = runner.invoke(app, ["students", "import", str(f)])
    assert result.exit_code == 0, result.output
    assert "第3行" in result.output and "第4行" in result.output and "第5行" in result.output
    assert "导入 2 名学生，3 行有误" in result.output
    with cli_env.session() as s:
        names = sorted(st.name for st in s.exec(select(people.Student)).all())
        assert names == ["李明", "赵强"]
        assert people.get_class(s, "七(1)班") is not None  # full-width brackets normalised


def test_students_import_reads_gb18030_from_excel(cli_env, tmp_path):
    f = tmp_path / "roster.csv"
    f.write_bytes("2024101,陈静,八(2)班\n".encode("gb18030"))
    result = runner.invoke(app, ["students", "import", str(f)])
    assert result.exit_code == 0 and "导入 1 名学生" in result.output


def test_parent_invite_links_the_child_and_people_list(cli_env, tmp_path):
    f = tmp_path / "roster.csv"
    f.write_text("2024001,李明,七(3)班\n", encoding="utf-8")
    runner.invoke(app, ["students", "import", str(f)])
    assert runner.invoke(app, ["invite", "李明家长", "--role", "家长", "--student", "2024001"]).exit_code == 0
    assert runner.invoke(app, ["invite", "刘师傅", "--role", "worker", "--category", "电,水"]).exit_code == 0
    listing = runner.invoke(app, ["people", "list"])
    assert "李明家长\t家长\t未绑定" in listing.output
    assert "刘师傅\t维修工\t未绑定 类别:电,水" in listing.output


def test_missing_file_is_a_clear_error(cli_env, tmp_path):
    result = runner.invoke(app, ["students", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "文件不存在" in result.output


# --- help in one language, readable at 80 columns (issue 16) ---

def _all_commands(command, path=()):  # type: ignore[no-untyped-def]
    yield path
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        yield from _all_commands(sub, (*path, name))


@pytest.fixture
def houqin(monkeypatch):  # type: ignore[no-untyped-def]
    """`houqin` as main() runs it: the command built by bot.cli.zh.chinese_command."""
    import typer.testing

    from bot.cli.zh import chinese_command

    command = chinese_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command)
    return command


def test_every_help_page_is_chinese_and_fits_80_columns(houqin):  # type: ignore[no-untyped-def]
    import re
    import unicodedata

    command = houqin
    paths = list(_all_commands(command))
    assert ("serve",) in paths and ("menu", "push") in paths
    english = re.compile(r"Show this message|<bool>|\bOptions\b|\bCommands\b|\bArguments\b|Usage:|\[default|"
                         r"\[required\]|<str>|<int>|<path>")
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"},
                                    prog_name="houqin")
        assert result.exit_code == 0, (path, result.output)
        out = result.output
        assert "用法：houqin" in out and "显示此帮助并退出" in out, path
        assert not english.search(out), (path, english.search(out))
        for line in out.splitlines():
            width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
            assert width <= 80, (path, line)
            assert not line.endswith("… │"), (path, line)  # a description cut short
    serve = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "80"}, prog_name="houqin").output
    assert "监听地址" in serve and "监听端口" in serve and "工作进程数" in serve


def test_errors_are_chinese_too(houqin):  # type: ignore[no-untyped-def]
    command = app
    missing = CliRunner().invoke(command, ["invite"], env={"COLUMNS": "80"}, prog_name="houqin")
    assert missing.exit_code == 2 and "缺少参数" in missing.output and "Missing" not in missing.output
    unknown = CliRunner().invoke(command, ["serve", "--hots", "x"], env={"COLUMNS": "80"}, prog_name="houqin")
    assert "没有这个选项" in unknown.output and "No such option" not in unknown.output
