"""`houqin --help` and its errors in Chinese, like the rest of the command line.

typer (0.29) renders help with rich and carries its own copy of click, whose words are English and not
translatable through gettext: the panel titles, "Usage:", the help option's "Show this message and exit.",
`<bool>` on flags, "Missing option …". `localise()` replaces those words once per process (the CLI's main()
calls it; it is idempotent), and `chinese_command(app)` sets the usage line's metavars on a built command.
"""

from __future__ import annotations

from typing import Any

import typer
import typer.core
import typer.rich_utils as rich_utils
from typer._click import decorators as click_decorators
from typer._click import exceptions as click_exceptions
from typer._click import formatting as click_formatting

HELP_OPTION = "显示此帮助并退出"
TYPE_NAMES = {"str": "文本", "int": "整数", "float": "数字", "path": "路径", "file": "文件", "text": "文本",
              "list[str]": "文本…", "bool": "是/否"}
ARGUMENT_NAMES = {"name": "姓名", "klass": "班级", "teacher": "教师姓名", "file": "文件", "phone": "手机号",
                  "value": "手机号或证件号", "reason": "原因"}
PARAM_TYPES = {"option": "选项", "argument": "参数", "parameter": "参数"}

_done = False


def localise() -> None:
    """Chinese for rich's words, the usage line, the help option, option types and click's errors (once)."""
    global _done
    if _done:
        return
    _done = True
    _rich_words()
    _usage_prefix()
    _help_option()
    _type_names()
    _error_messages()


def _rich_words() -> None:
    rich_utils.DEFAULT_STRING = "[默认：{}]"
    rich_utils.ENVVAR_STRING = "[环境变量：{}]"
    rich_utils.REQUIRED_LONG_STRING = "[必填]"
    rich_utils.DEPRECATED_STRING = "（已弃用）"
    rich_utils.ARGUMENTS_PANEL_TITLE = "参数"
    rich_utils.OPTIONS_PANEL_TITLE = "选项"
    rich_utils.COMMANDS_PANEL_TITLE = "命令"
    rich_utils.ERRORS_PANEL_TITLE = "错误"
    rich_utils.ABORTED_TEXT = "已中止。"
    rich_utils.RICH_HELP = "运行 [blue]'{command_path} {help_option}'[/] 查看帮助。"
    rich_utils.OptionHighlighter.highlights = [*rich_utils.OptionHighlighter.highlights, r"(?P<usage>用法：)"]


def _usage_prefix() -> None:
    write_usage = click_formatting.HelpFormatter.write_usage

    def chinese_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        write_usage(self, prog, args, "用法：" if prefix is None else prefix)

    click_formatting.HelpFormatter.write_usage = chinese_usage  # type: ignore[method-assign]


def _help_option() -> None:
    help_option = click_decorators.help_option

    def chinese_help_option(param_decls: list[str]) -> Any:
        decorate = help_option(param_decls)

        def apply(cmd: Any) -> Any:
            decorate(cmd)
            cmd.params[-1].help = HELP_OPTION
            return cmd

        return apply

    click_decorators.help_option = chinese_help_option  # type: ignore[assignment]


def _type_names() -> None:
    display_type = typer.core.TyperOption.display_type_rich

    def chinese_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False):
            return None  # a switch: its name says it all
        shown = display_type(self, ctx)
        if shown and shown.startswith("<") and shown.endswith(">"):
            return f"<{TYPE_NAMES.get(shown[1:-1], shown[1:-1])}>"
        return shown

    typer.core.TyperOption.display_type_rich = chinese_type  # type: ignore[method-assign]
    argument_type = typer.core.TyperArgument.display_type_rich
    typer.core.TyperArgument.display_type_rich = (  # type: ignore[method-assign]
        lambda self, ctx: _zh_type(argument_type(self, ctx)))


def _param_hint(error: Any) -> str | None:
    """The parameter an error is about, as click names it (`'--name'`), or None."""
    hint = error.param_hint if error.param_hint is not None else (
        error.param.get_error_hint() if error.param is not None else None)
    return None if hint is None else click_exceptions._join_param_hints(hint)


def _error_messages() -> None:
    def missing(self: Any) -> str:
        hint = _param_hint(self)
        kind = self.param_type or (self.param.param_type_name if self.param is not None else "parameter")
        return f"缺少{PARAM_TYPES.get(kind, kind)}{f' {hint}' if hint else ''}。"

    def no_such_option(self: Any) -> str:
        text = f"没有这个选项：{self.option_name}"
        if self.possibilities:
            text += f"（是不是：{'、'.join(sorted(self.possibilities))}）"
        return text

    def bad_parameter(self: Any) -> str:
        hint = _param_hint(self)
        return f"值不对：{self.message}" if hint is None else f"{hint} 的值不对：{self.message}"

    click_exceptions.MissingParameter.format_message = missing  # type: ignore[method-assign]
    click_exceptions.NoSuchOption.format_message = no_such_option  # type: ignore[method-assign]
    click_exceptions.BadParameter.format_message = bad_parameter  # type: ignore[method-assign]


def _zh_type(shown: str | None) -> str | None:
    if shown and shown.startswith("<") and shown.endswith(">"):
        return f"<{TYPE_NAMES.get(shown[1:-1], shown[1:-1])}>"
    return shown


def chinese_command(app: typer.Typer) -> Any:
    """The click command of `app` with the usage line in Chinese (`用法：houqin [选项] 命令 [参数]...`)."""
    localise()
    command = typer.main.get_command(app)
    _metavars(command)
    return command


def _metavars(command: Any) -> None:
    if hasattr(command, "options_metavar"):
        command.options_metavar = "[选项]"
    if hasattr(command, "subcommand_metavar"):
        command.subcommand_metavar = "命令 [参数]..."
    for param in getattr(command, "params", []):
        if isinstance(param, typer.core.TyperArgument) and param.metavar is None and param.name:
            param.metavar = ARGUMENT_NAMES.get(param.name, param.name)
    for sub in (getattr(command, "commands", None) or {}).values():
        _metavars(sub)
