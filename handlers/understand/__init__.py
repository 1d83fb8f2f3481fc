"""The understanding layer (SPEC section 2): from what staff type to the canonical command, a question back,
a restatement to confirm, or a friendly word — between input normalisation and the command handlers.

`route(ctx, text, words)` is the one entry point (the router calls it): it returns the canonical command to
run, or the reply to send instead. A message that already is a canonical command takes the fast path and
costs a split and a set lookup. Everything else goes through `rules.Understander`. Nothing here writes a
record: the commands it produces do, through the same handlers and services as typed commands.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from typing import Any

from handlers import base
from handlers.base import Context, dialog
from handlers.text import keep_punctuation, normalise, split_command, tokens
from handlers.timeexpr import TimeParseError, split_time_prefix
from handlers.understand import lexicon as lx
from handlers.understand.places import find_place
from handlers.understand.plan import ASK, CANONICAL, CHAT, CONFIRM, HINT, RUN, Plan
from handlers.understand.rules import Understander, leave_command, repair_command, vague_leak, visitor_command
from handlers.understand.textprep import find_phone, fix_dates, prepare
from storage import directory
from storage.errors import UserError
from storage.visitor.parse import parse_visitor_line

__all__ = ["route", "OBSERVERS", "Plan", "execute", "hint_text"]

# Commands that need an argument: alone, they go through understanding (收到 → the one reminder waiting …).
NEEDS_ARG = frozenset({"接单", "完成", "退单", "派单", "查询", "催办", "评价", "批准", "驳回", "核验", "出校", "返校", "离开",
                       "离校", "收到", "取消提醒", "不认识"})
# Lines whose canonical parse is strict about order and separators: always through understanding.
ALWAYS = frozenset({"访客", "访客登记", "预约", "访客预约"})
# Commands whose word people glue to the number or name that follows: split and run as typed.
GLUED = frozenset({"核验", "出校", "返校", "离开", "接单", "完成", "退单", "催办", "查询", "评价", "取消", "取消提醒", "批准",
                   "驳回", "收到", "派单", "绑定"})
YES = frozenset({"是", "是的", "确认", "对", "对的", "好", "好的", "可以", "确定", "嗯", "ok", "OK", "行", "提交", "没错"})
NO = frozenset({"不是", "不", "不对", "不用", "不用了", "算了", "否", "错了"})
_REFISH = re.compile(r"(?i)^(?:[a-z]{2})?\d+$")
_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z0-9]{6})(?![A-Za-z0-9])")

OBSERVERS: list[Callable[[Plan, str], None]] = []  # told of every decision (tests and metrics)
_trusted: contextvars.ContextVar[bool] = contextvars.ContextVar("understand_trusted", default=False)

REQUIRED = {"报修": ("地点", "描述"), "访客": ("姓名", "手机", "事由"), "预约": ("姓名", "手机", "时间", "事由"),
            "请假": ("学生", "时间段", "事由"), "提醒": ("时间", "内容")}
QUESTIONS = {"地点": "报修地点（例如 教学楼301）", "描述": "故障情况（例如 灯不亮）", "姓名": "访客姓名", "手机": "手机号",
             "事由": "事由", "时间": "时间（例如 明天15:00）", "时间段": "时间段（例如 明天全天、今天14:00-16:00）",
             "学生": "学生姓名", "内容": "提醒内容"}


def decide(ctx: Context, text: str, words: set[str]) -> Plan:
    if _trusted.get():
        return Plan(CANONICAL, command=text)
    s = normalise(text)
    # full-width digits and letters (`派单 ８ 黄永福`, `绑定 Ｍ５Ｎ３ＶＢ`) are half-width for every path; the free
    # text's own Chinese punctuation (，！？；：) stays as typed
    text = keep_punctuation(text)
    toks = tokens(s)
    first = toks[0].text.rstrip(":") if toks else ""
    if ctx.actor is None:
        if split_command(s, words) is None:
            m = _CODE.search(s)
            if m and re.search(r"\d", m.group(1)) and re.search(r"[A-Za-z]", m.group(1)):
                return Plan(RUN, "绑定", {"邀请码": m.group(1).upper()}, command=f"绑定 {m.group(1).upper()}")
        return Plan(CANONICAL, command=text)
    ack_chat = first in ("收到", "完成") and len(toks) > 1 and not _REFISH.match(toks[1].text)  # 收到，谢谢
    if first in words and first not in ALWAYS and (len(toks) > 1 or first not in NEEDS_ARG) and not ack_chat:
        return _checked(ctx, first, s) or Plan(CANONICAL, command=text)
    if first in ALWAYS and len(toks) > 1 and _strict_line_ok(first, s[toks[1].start:]):
        return Plan(CANONICAL, command=text)
    parsed = split_command(s, words)
    if parsed is not None and parsed.word in GLUED and parsed.args and not ack_chat and (
            len(base.candidates(parsed.word)) == 1 or not parsed.args[0].isdigit()):
        return Plan(CANONICAL, command=f"{parsed.word} {parsed.rest}")  # `核验QJ4`, `驳回QJ3 比赛取消了`
    plan = Understander(ctx, prepare(text)).plan()
    if first in ALWAYS and len(toks) > 1 and plan.kind != RUN and (
            "预约" in first or not plan.fields.get("手机")):
        return Plan(CANONICAL, command=text)  # the strict parser's own error says what is wrong
    if plan.kind == HINT and split_command(s, words) is not None:
        return Plan(CANONICAL, command=text)  # a command word the rules did not place: the handler explains
    return plan


_ALIAS_TARGETS = {"保安": "门卫", "安保": "门卫", "保卫": "门卫", "门岗": "门卫", "物业": "维修工", "电工": "维修工"}


def _checked(ctx: Context, word: str, s: str) -> Plan | None:
    """A canonical line that would record something the sender may not mean: restate or ask first."""
    if word == "提醒":
        m = re.search(r"@(" + "|".join(_ALIAS_TARGETS) + r")(?![\u4e00-\u9fa5])", s)
        if m:
            fixed = s.replace("@" + m.group(1), "@" + _ALIAS_TARGETS[m.group(1)])
            return Plan(CONFIRM, "提醒", {}, command=fixed,
                        reply=f"「@{m.group(1)}」是指 @{_ALIAS_TARGETS[m.group(1)]} 吗？将设置：{fixed}。回复「是」执行，或直接改正。")
    if word == "报修":
        parts = s.split()
        args = [p for p in parts[1:] if p != "紧急"]
        if len(args) < 2:
            return None
        rest = " ".join(args[1:])
        if vague_leak(args[0], rest):
            return Plan(ASK, "报修", {"地点": args[0], "描述": " ".join(args[1:])},
                        reply=f"{args[0]}几楼、哪一间（或哪个位置）？请发送完整地点，例如：{args[0]}3楼公共厕所、{args[0]}305。",
                        dialog={"intent": "报修", "fields": {"描述": " ".join(args[1:]), "楼": args[0],
                                                             **({"紧急": True} if "紧急" in parts[1:2] else {})},
                                "need": "地点"})
    return None


def _strict_line_ok(word: str, rest: str) -> bool:
    """Whether a 访客/预约 line already parses in the strict canonical form (then it runs as typed)."""
    try:
        if word.startswith("访客"):
            parse_visitor_line(rest)
            return True
        parts = rest.split()
        return len(parts) >= 4 and bool(find_phone(parts[1])) and len(parts[1]) == 11 and _plain_name(parts[0])
    except UserError:
        return False


_TITLE_WORDS = re.compile(r"教练|老师|师傅|家长|妈妈|爸爸|经理|主任|校长|医生|教研员|外教|工程师|领导|同学|司机|快递")


def _plain_name(word: str) -> bool:
    """A booking's name token that is a name (马涛, Tom), not a title glued to one (田径教练马涛)."""
    if re.fullmatch(r"[A-Za-z][A-Za-z .'-]{0,29}", word):
        return True
    return 2 <= len(word) <= 4 and not _TITLE_WORDS.search(word[1:])


def route(ctx: Context, text: str, words: set[str]) -> tuple[str, str | None]:
    """(command to run, None) or (text, reply to send instead)."""
    plan = decide(ctx, text, words)
    for observe in OBSERVERS:
        observe(plan, text)
    if plan.kind in (RUN, CANONICAL):
        return plan.command, None
    if plan.kind == CONFIRM:
        ctx.start_dialog("confirm", {"command": plan.command, "intent": plan.intent})
        return text, plan.reply
    if plan.kind == ASK:
        if plan.dialog:
            ctx.start_dialog("fill", plan.dialog)
        return text, plan.reply
    if plan.kind == CHAT:
        return text, plan.reply
    return text, hint_text(ctx, text)


def execute(ctx: Context, command: str) -> str:
    """Run a command this layer built (from a dialog), without understanding it again."""
    token = _trusted.set(True)
    try:
        return ctx.run(command)
    finally:
        _trusted.reset(token)


# --- dialogs ------------------------------------------------------------------------------------------------


@dialog("confirm")
def confirm_step(ctx: Context, state: dict[str, Any]) -> str:
    answer = normalise(ctx.inbound.text).strip("!！。.~ ")
    ctx.end_dialog()
    if answer in YES:
        return execute(ctx, str(state.get("command", "")))
    if answer in NO:
        return "好的，没有提交。"
    return ctx.run(ctx.inbound.text)  # a correction or a new request


@dialog("fill")
def fill_step(ctx: Context, state: dict[str, Any]) -> str:
    text = normalise(ctx.inbound.text) if ctx.inbound.type in ("text", "voice") else ""
    if not text:
        return "请用文字回复（发送「取消」退出）。"
    intent = str(state.get("intent"))
    fields: dict[str, Any] = dict(state.get("fields") or {})
    need = str(state.get("need"))
    toks = tokens(text)
    if toks and toks[0].text in _words() and (len(toks) > 1 or toks[0].text not in NEEDS_ARG):
        ctx.end_dialog()
        return ctx.run(text)
    problem = _fill(ctx, intent, fields, need, text)
    if problem:
        return problem
    missing = [k for k in REQUIRED.get(intent, ()) if not fields.get(k)]
    if missing:
        ctx.save_dialog("fill", {"intent": intent, "fields": fields, "need": missing[0]})
        return f"好的。请发送{QUESTIONS[missing[0]]}。"
    ctx.end_dialog()
    return execute(ctx, _command(ctx, intent, fields))


def _words() -> set[str]:
    return base.all_words()


def _fill(ctx: Context, intent: str, fields: dict[str, Any], need: str, text: str) -> str | None:
    if need == "地点":
        lex = lx.lexicon(ctx.session)
        where = find_place(lex, text)
        if where is not None and where.start == 0:
            fields["地点"] = where.place
            if where.rest and not fields.get("描述"):
                fields["描述"] = where.rest
        else:
            fields["地点"] = text.replace(" ", "")
        building = str(fields.pop("楼", "") or "")
        if building and not any(str(fields["地点"]).startswith(b) for b in lx.BUILDINGS):
            fields["地点"] = building + str(fields["地点"])  # asked 宿舍楼几楼: `3楼公共厕所` is in 宿舍楼
    elif need == "手机":
        phone = find_phone(prepare(text).n)
        if phone is None:
            return "手机号不对（应为11位大陆手机号），请重新发送手机号（发送「取消」退出）。"
        fields["手机"] = phone[0]
        rest = re.sub(r"[\d\s+\-]", "", text)
        if rest and not fields.get("姓名") and 2 <= len(rest) <= 4:
            fields["姓名"] = rest
    elif need in ("时间", "时间段"):
        kind = "span" if need == "时间段" else ("moment" if intent == "预约" else "when")
        try:
            split_time_prefix(fix_dates(text), ctx.now, kind)  # type: ignore[arg-type]
        except TimeParseError as exc:
            return f"{exc}（发送「取消」退出）"
        fields[need] = fix_dates(text)
    elif need == "姓名":
        phone = find_phone(prepare(text).n)
        if phone:
            fields["手机"] = phone[0]
            text = re.sub(r"[\d\s+\-]", "", text)
        fields["姓名"] = text.strip()[:20]
    else:
        fields[need] = text
    return None


def _command(ctx: Context, intent: str, f: dict[str, Any]) -> str:
    if intent == "报修":
        return repair_command(f)
    if intent == "访客":
        return visitor_command(f)
    if intent == "预约":
        return f"预约 {f['姓名']} {f['手机']} {f['时间']} {f['事由']}"
    if intent == "请假":
        return leave_command(f, None)
    targets = " ".join(t for t in f.get("对象", []) if t != "@本人")
    return f"提醒 {f['时间']} {f['内容']}" + (f" {targets}" if targets else "")


# --- no likely intent ---------------------------------------------------------------------------------------


def hint_text(ctx: Context, text: str) -> str:
    s = normalise(text)
    quoted = s if len(s) <= 30 else s[:30] + "…"
    own = re.sub(r"\s+", " ", s)[:20]
    roles = ctx.actor.roles if ctx.actor else frozenset()
    tries: list[str] = []
    if roles & {"admin", "leader", "teacher", "head_teacher", "guard", "worker"}:
        lex = lx.lexicon(ctx.session)
        where = find_place(lex, s)
        tries.append(f"报修 {where.place} {where.rest or '问题描述'}" if where else f"报修 地点 {own}")
    if "guard" in roles:
        tries.insert(0, f"访客 姓名 手机号 {own}")
    if roles & {"parent", "teacher", "head_teacher"}:
        kids = directory.my_children(ctx.session, ctx.actor) if ctx.actor and "parent" in roles else []
        tries.append(f"请假 {kids[0].name if len(kids) == 1 else '学生姓名'} 明天全天 {own}")
    tries.append(f"提醒 明天8:00 {own}")
    lines = [f"没有听懂「{quoted}」。您是不是想："]
    lines += [f"· {t}" for t in tries[:3]]
    lines.append("照上面的格式改一下发给我，或发送「帮助」查看全部命令。")
    return "\n".join(lines)
