"""Student leave (请假, QJ): request, 待审批 / 批准 / 驳回, the gate (核验 / 出校 / 返校) and 今日请假.

Parsing only; the rules are in storage/leave.py.
"""

from __future__ import annotations

from datetime import datetime

from handlers.base import Context, command
from handlers.text import parse_ref
from handlers.timeexpr import Span, TimeParseError, split_time_prefix
from storage import leave
from storage.errors import UserError

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


@command("请假", roles={"teacher", "head_teacher", "parent"}, record="QJ",
         help="请假 李明 今天14:00-16:00 看病（重名时加班级：请假 七(3)班 李明 …）")
def request(ctx: Context) -> str:
    if not ctx.args:
        return USAGE
    s, args, i = ctx.session, ctx.args, 0
    klass = None
    if leave.is_class_name(s, args[0]) and not leave.is_student_token(s, args[0]):
        klass, i = args[0], 1
    name: str | None = None
    if i < len(args) and leave.is_student_token(s, args[i]):
        name = args[i]
        span, reason = _span(ctx.after(i + 1), ctx.now)
    else:
        try:  # no name: a parent's only child (the service decides whether that is allowed)
            span, reason = _span(ctx.after(i), ctx.now)
        except UserError:
            if i >= len(args):
                raise UserError(USAGE) from None
            name = args[i]  # not a time, so meant as a name: the service says it is not in the roster
            leave.student_for_request(s, ctx.me, name, klass)
            span, reason = _span(ctx.after(i + 1), ctx.now)
    student = leave.student_for_request(s, ctx.me, name, klass)
    slip = leave.request_leave(s, ctx.me, student, span.start, span.end, reason, now=ctx.now)
    what = f"{leave.ref(slip)}：{leave.who(s, slip)}，{leave.slip_span(slip)}，事由：{slip.reason}"
    back = "" if slip.expects_return else "（不返校）"
    if slip.state == leave.APPROVED:
        return f"已批准请假 {what}{back}。门卫可凭 {leave.ref(slip)} 核验出校。"
    head = leave.head_teacher_id(s, slip.class_id)
    to = f"班主任 {leave.person_name(s, head)}" if head else "管理员（本班未设置班主任）"
    return f"已提交请假 {what}{back}。状态：待审批，已通知{to}，审批后会通知您。"


@command("待审批", roles={"head_teacher", "admin", "leader"}, help="待审批（我班待审批的请假）")
def pending(ctx: Context) -> str:
    slips = leave.pending_for(ctx.session, ctx.me, ctx.now)
    if not slips:
        return "没有待审批的请假。"
    lines = [f"待审批的请假（{len(slips)}条）："]
    for slip in slips:
        requester = leave.person_name(ctx.session, slip.requester_id)
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
    if arg.upper().startswith(leave.PREFIX) or (arg.isdigit() and not leave.is_student_token(ctx.session, arg)):
        return parse_ref(arg, leave.PREFIX)
    return None


@command("核验", roles={"guard", "admin"}, record="QJ", help="核验 QJ5 或 核验 李明（能否出校）")
def check(ctx: Context) -> str:
    if not ctx.args:
        return "请发送「核验 QJ5」或「核验 学生姓名」（重名时：核验 七(3)班 李明）。"
    n = _slip_number(ctx)
    if n is not None:
        return leave.check_slip(ctx.session, n, ctx.now)
    s, args = ctx.session, ctx.args
    if len(args) >= 2 and leave.is_class_name(s, args[0]) and not leave.is_student_token(s, args[0]):
        student = leave.find_student(s, args[1], args[0], example=f"核验 七(3)班 {args[1]}")
    else:
        student = leave.find_student(s, args[0], example=f"核验 七(3)班 {args[0]}")
    return leave.check_student(s, student, ctx.now)


@command("出校", roles={"guard", "admin"}, record="QJ", help="出校 QJ5（登记学生出校）")
def exit_(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, leave.PREFIX)
    slip = leave.record_exit(ctx.session, ctx.me, n, now=ctx.now)
    back = f"请假至 {leave.fmt_time(slip.ends_at)}" if slip.expects_return else "不返校"
    return (f"已登记出校 {leave.ref(slip)}：{leave.who(ctx.session, slip)}，{leave.fmt_time(ctx.now)}，{back}。"
            f"已通知家长。")


@command("返校", roles={"guard", "admin"}, record="QJ", help="返校 QJ5（登记学生返校）")
def return_(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, leave.PREFIX)
    slip = leave.record_return(ctx.session, ctx.me, n, now=ctx.now)
    return f"已登记返校 {leave.ref(slip)}：{leave.who(ctx.session, slip)}，{leave.fmt_time(ctx.now)}。已通知家长。"


@command("今日请假", roles={"guard", "head_teacher", "admin", "leader"}, help="今日请假（今天的请假和出入情况）")
def today(ctx: Context) -> str:
    slips = leave.today_for(ctx.session, ctx.me, ctx.now)
    if not slips:
        return "今天没有请假。"
    lines = [f"今日请假（{len(slips)}条）："]
    lines += [leave.list_line(ctx.session, slip, ctx.now) for slip in slips]
    return "\n".join(lines)
