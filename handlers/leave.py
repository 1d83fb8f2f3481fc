"""Student leave (请假, QJ): request, 待审批 / 批准 / 驳回, the gate (核验 / 出校 / 返校) and 今日请假.

Parsing only; the rules are in storage/leave/ (service.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handlers.base import YES, Context, command, dialog
from handlers.text import parse_ref, tokens
from handlers.timeexpr import Span, TimeParseError, split_time_prefix
from storage import directory, leave, roster
from storage.errors import UserError
from storage.people import Student
from storage.kernel import fmt_time
from storage.people import name_of

USAGE = (
    "请假格式：请假 [班级] 学生姓名 时间段 事由\n"
    "例如：请假 李明 今天14:00-16:00 看病\n"
    "重名时写班级：请假 七(3)班 李明 明天全天 发烧\n"
    "家长只有一个孩子时可省略姓名：请假 明天上午 复诊\n"
    "不回学校请在事由中写「不返校」。"
)


def _span(text: str, now: datetime) -> tuple[Span, str]:
    try:
        value, rest = split_time_prefix(text, now, "span")
    except TimeParseError as exc:  # may not be a UserError: say it as one
        raise UserError(str(exc)) from None
    if not isinstance(value, Span):  # pragma: no cover - "span" always gives a Span
        raise UserError("请写明请假的时间段，例如：今天14:00-16:00、明天全天")
    return value, rest


def _starts_with_span(text: str, now: datetime) -> bool:
    """Whether the text opens with a time span. A span that is recognised but wrong (an end before its start)
    is reported at once rather than taken for a student's name."""
    try:
        split_time_prefix(text, now, "span")
    except TimeParseError as exc:
        if str(exc).startswith("无法识别"):
            return False
        raise UserError(str(exc)) from None
    return True


def _lead(text: str) -> str:
    """Drop the separators (spaces, commas after NFKC) a spoken or typed argument list leaves in front."""
    return text.strip().lstrip(" ,，").strip()


def _first(text: str) -> tuple[str, str]:
    """The first argument and the text after it, as typed."""
    toks = tokens(text)
    if not toks:
        return "", ""
    return toks[0].text, (text[toks[1].start :] if len(toks) > 1 else "")


def _take_class(ctx: Context, text: str) -> tuple[str | None, str]:
    """A leading class name: `七(3)班 李明 …`, or glued to the name as speech recognition writes it
    (`七(3)班李明 …`)."""
    s = ctx.session
    first, after = _first(text)
    if first and roster.is_class_name(s, first) and not roster.is_student_token(s, first):
        return first, after
    glued = roster.class_name_prefix(s, text)
    if glued and len(text) > len(glued):
        return glued, _lead(text[len(glued) :])
    return None, text


def _take_student(ctx: Context, text: str, span_may_follow: bool) -> tuple[str | None, str]:
    """A leading student name (or 学号), also glued to what follows (`李明明天全天 发烧`); None when the text
    opens with the time span instead (a parent's only child)."""
    s = ctx.session
    first, after = _first(text)
    if not first:
        return None, ""
    if roster.is_student_token(s, first):
        return first, after
    if span_may_follow and _starts_with_span(text, ctx.now):
        return None, text
    glued = roster.student_name_prefix(s, text)
    if glued:
        return glued, _lead(text[len(glued) :])
    return first, after  # not in the roster: the service says so


@command("请假", roles={"teacher", "head_teacher", "parent"}, record="QJ",
         help="请假 李明 今天14:00-16:00 看病（重名时加班级：请假 七(3)班 李明 …）",
         help_for={frozenset({"parent"}): "请假 今天14:00-16:00 看病（孩子多于一个时写上姓名：请假 李明 …）"})
def request(ctx: Context) -> str:
    if not ctx.rest:
        return USAGE
    s = ctx.session
    klass, text = _take_class(ctx, _lead(ctx.rest))
    name, text = _take_student(ctx, text, span_may_follow=True)
    if not text:
        raise UserError(USAGE)
    student = leave.student_for_request(s, ctx.me, name, klass)
    span, reason = _span(text, ctx.now)
    reason = _lead(reason)
    assert student.id is not None
    existing = leave.overlapping(s, student.id, span.start, span.end)
    if existing:
        # Refusals first (no question before a no), then ask before a second slip.
        leave.check_request(s, ctx.me, student, span.start, span.end, reason, now=ctx.now)
        ctx.start_dialog("leave-again", {"student": student.id, "start": span.start.isoformat(),
                                         "end": span.end.isoformat(), "reason": reason})
        lines = [f"{student.name}在这段时间已有请假："]
        lines += [f"· {leave.list_line(s, slip, ctx.now)}，事由：{slip.reason}" for slip in existing[:3]]
        lines.append(f"仍要再提交 {leave.fmt_span(span.start, span.end)} 的请假吗？回复「是」或「确认」提交，"
                     "回复「取消」放弃。")
        return "\n".join(lines)
    return _submit(ctx, student, span.start, span.end, reason)


def _submit(ctx: Context, student: Student, start: datetime, end: datetime, reason: str) -> str:
    s = ctx.session
    slip = leave.request_leave(s, ctx.me, student, start, end, reason, now=ctx.now)
    what = f"{leave.ref(slip)}：{leave.who(s, slip)}，{leave.slip_span(slip)}，事由：{slip.reason}"
    back = "" if slip.expects_return else "（不返校）"
    if slip.state == leave.APPROVED:
        return f"已批准请假 {what}{back}。门卫可凭 {leave.ref(slip)} 核验出校。"
    head = leave.head_teacher_id(s, slip.class_id)
    to = f"班主任 {name_of(s, head)}" if head else "管理员（本班未设置班主任）"
    return f"已提交请假 {what}{back}。状态：待审批，已通知{to}，审批后会通知您。"


@dialog("leave-again")
def confirm_again(ctx: Context, state: dict[str, Any]) -> str:
    """The answer to "已有请假，仍要提交吗？": 是/确认 submits; anything else drops it and is read as usual."""
    ctx.end_dialog()
    if ctx.inbound.text.strip().rstrip("。.!！") not in YES:
        return ctx.run(ctx.inbound.text) if ctx.inbound.text.strip() else "已放弃提交。"
    student = ctx.session.get(Student, int(state["student"]))
    if student is None:
        raise UserError("没有找到这名学生，请重新提交。")
    return _submit(ctx, student, datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"]),
                   str(state["reason"]))


@command("我的请假", roles={"teacher", "head_teacher", "parent"},
         help="我的请假（我提交的请假和审批进度）",
         help_for={frozenset({"parent"}): "我的请假（孩子的请假和审批、出入校情况）"})
def mine(ctx: Context) -> str:
    slips = leave.my_slips(ctx.session, ctx.me)
    if not slips:
        return "暂无请假记录。请假请发送：" + ("请假 今天14:00-16:00 看病" if ctx.me.has("parent")
                                            else "请假 李明 今天14:00-16:00 看病")
    lines = [f"最近的请假（{len(slips)}条）："]
    lines += [f"{leave.list_line(ctx.session, slip, ctx.now)}，事由：{slip.reason}" for slip in slips]
    return "\n".join(lines)


@command("待审批", roles={"head_teacher", "admin", "leader"}, help="待审批（我班待审批的请假）")
def pending(ctx: Context) -> str:
    slips = leave.pending_for(ctx.session, ctx.me, ctx.now)
    if not slips:
        return "没有待审批的请假。"
    lines = [f"待审批的请假（{len(slips)}条）："]
    for slip in slips:
        requester = name_of(ctx.session, slip.requester_id)
        lines.append(f"{leave.ref(slip)} {leave.who(ctx.session, slip)} {leave.slip_span(slip)} "
                     f"{slip.reason}（{requester}）")
    first = leave.ref(slips[0])
    lines.append(f"回复「批准 {first}」同意，或「驳回 {first} 理由」驳回。")
    return "\n".join(lines)


@command("批准", roles={"head_teacher", "admin", "leader"}, record="QJ",
         who="该班班主任（管理员、校领导可代批）", help="批准 QJ5（同意请假）")
def approve(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, leave.PREFIX)
    slip = leave.decide(ctx.session, ctx.me, n, True, now=ctx.now)
    deputy = "（代班主任）" if slip.deputy else ""
    return (f"已批准{deputy} {leave.ref(slip)}：{leave.who(ctx.session, slip)}，{leave.slip_span(slip)}。"
            f"已通知申请人和家长。")


@command("驳回", roles={"head_teacher", "admin", "leader"}, record="QJ",
         who="该班班主任（管理员、校领导可代批）", help="驳回 QJ5 当天有考试（驳回请假并说明理由）")
def reject(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, leave.PREFIX)
    slip = leave.decide(ctx.session, ctx.me, n, False, ctx.after(1), now=ctx.now)
    deputy = "（代班主任）" if slip.deputy else ""
    return (f"已驳回{deputy} {leave.ref(slip)}：{leave.who(ctx.session, slip)}，理由：{slip.reject_reason}。"
            f"已通知申请人和家长。")


def _slip_number(ctx: Context) -> int | None:
    """`QJ5` / `qj5` / `5` → 5; a bare number that is a student's 学号 is the student, not a slip."""
    arg = ctx.args[0]
    if arg.upper().startswith(leave.PREFIX) or (arg.isdigit() and not roster.is_student_token(ctx.session, arg)):
        return parse_ref(arg, leave.PREFIX)
    return None


@command("核验", roles={"guard", "admin"}, record="QJ", help="核验 QJ5 或 核验 李明（能否出校）")
def check(ctx: Context) -> str:
    if not ctx.args:
        return "请发送「核验 QJ5」或「核验 学生姓名」（重名时：核验 七(3)班 李明）。"
    n = _slip_number(ctx)
    if n is not None:
        return _check_line(ctx, leave.get_slip(ctx.session, n))
    klass, text = _take_class(ctx, _lead(ctx.rest))
    name, _ = _take_student(ctx, text, span_may_follow=False)
    if not name:
        return "请写明学生姓名，例如：核验 七(3)班 李明"
    student = roster.find_student(ctx.session, name, klass, example=f"核验 七(3)班 {name}")
    slip = leave.slip_to_check(ctx.session, student, ctx.now)
    if slip is None:
        return f"{student.name}（{roster.class_name(ctx.session, student)}）：不可出校，今天没有请假单。"
    return _check_line(ctx, slip)


def _check_line(ctx: Context, slip: leave.LeaveSlip) -> str:
    ok, why = leave.gate_check(slip, ctx.now)
    return f"{leave.ref(slip)} {leave.who(ctx.session, slip)}：{'可以出校' if ok else '不可出校'}，{why}。"


def _gate_slip(ctx: Context, exit_: bool) -> int:
    """`出校 QJ5` / `出校 5`, or a student's name (`出校 王小明`, `出校 七(3)班 王小明`): the slip that name means
    at the gate now — for an exit the approved one not yet used, for a return the one they went out on."""
    if not ctx.args:
        raise UserError("请写假条编号或学生姓名，例如：出校 QJ5 或 出校 李明")
    n = _slip_number(ctx)
    if n is not None:
        return n
    klass, text = _take_class(ctx, _lead(ctx.rest))
    name, _ = _take_student(ctx, text, span_may_follow=False)
    word = "出校" if exit_ else "返校"
    student = roster.find_student(ctx.session, name or "", klass, example=f"{word} 七(3)班 {name}")
    slips = directory.slips_of_student(ctx.session, student.id, ctx.now)  # type: ignore[arg-type]
    wanted = [s for s in slips if s.state == (leave.APPROVED if exit_ else leave.OUT)]
    if len(wanted) == 1:
        return wanted[0].id  # type: ignore[return-value]
    if not wanted and slips:
        return slips[0].id  # type: ignore[return-value]  # the service says why it cannot be used
    if not wanted:
        raise UserError(f"{student.name} 目前没有可用的请假单，不能{word}。" + ("请先核验。" if exit_ else ""))
    refs = "、".join(leave.ref(s) for s in wanted)
    raise UserError(f"{student.name} 有多张假条（{refs}），请写编号，例如：{word} {leave.ref(wanted[0])}")


@command("出校", roles={"guard", "admin"}, record="QJ", help="出校 QJ5（登记学生出校）")
def exit_(ctx: Context) -> str:
    n = _gate_slip(ctx, True)
    slip = leave.record_exit(ctx.session, ctx.me, n, now=ctx.now)
    back = f"请假至 {fmt_time(slip.ends_at)}" if slip.expects_return else "不返校"
    return (f"已登记出校 {leave.ref(slip)}：{leave.who(ctx.session, slip)}，{fmt_time(ctx.now)}，{back}。"
            f"已通知家长。")


@command("返校", roles={"guard", "admin"}, record="QJ", help="返校 QJ5（登记学生返校）")
def return_(ctx: Context) -> str:
    n = _gate_slip(ctx, False)
    slip = leave.record_return(ctx.session, ctx.me, n, now=ctx.now)
    return f"已登记返校 {leave.ref(slip)}：{leave.who(ctx.session, slip)}，{fmt_time(ctx.now)}。已通知家长。"


@command("今日请假", roles={"guard", "head_teacher", "admin", "leader"}, help="今日请假（今天的请假和出入情况）")
def today(ctx: Context) -> str:
    slips = leave.today_for(ctx.session, ctx.me, ctx.now)
    if not slips:
        return "今天没有请假。"
    lines = [f"今日请假（{len(slips)}条）："]
    lines += [leave.list_line(ctx.session, slip, ctx.now) for slip in slips]
    return "\n".join(lines)
