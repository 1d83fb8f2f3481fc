"""The rules: from a prepared message, the sender's roles and their open records to a Plan.

Order matters and is written down once here: courtesy → help questions → record numbers (with the verb
chosen by role and record) → the guard's gate (phones, students, visitors by name) → decisions by student
name → worker jobs by description → questions about lists → reminders → leave → visitor bookings → repairs.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from rapidfuzz import fuzz

from handlers.base import Context
from handlers.timeexpr import Span, TimeParseError, split_time_prefix
from handlers.understand import lexicon as lx
from handlers.understand.places import find_place, has_fault
from handlers.understand.plan import CHAT, HINT, Plan, ask, confirm, run
from handlers.understand.textprep import ID_NUMBER, PLATE, SHORT_PHONE, Msg, cn_int, find_phone, fix_dates
from storage import directory, inspection, leave, people
from storage.schoolcal import Recurrence
from storage.errors import UserError
from storage.visitor.parse import USAGE, check_id_number, mask_id, mask_phone

STAFF_ROLES = {"admin", "leader", "teacher", "head_teacher", "guard", "worker"}
URGENT = re.compile(r"紧急|加急|特急|(?<![着焦心])急+[!！]*$|急[!！]|急{2,}|^急[\s,，]|赶紧|赶快|尽快|马上来|快来|十万火急|危险|头晕|冒烟|着火|焦糊|煤气味|漏电|打火")
THANKS = re.compile(r"^(?:谢谢|多谢|感谢|辛苦|麻烦了|好的|好滴|好嘞|好|嗯|哦|ok|OK|收到|知道了|明白|了解|行|可以|没问题|是的|对|"
                    r"哈+|呵+|嘿+|早|早上好|上午好|下午好|晚上好|你好|您好|在吗|在不在|老师在吗|测试|测试一下|test|不用了|算了|"
                    r"拜拜|再见|晚安|辛苦了|辛苦啦|大家辛苦了|谢谢老师|谢谢师傅)")
HELP_Q = re.compile(r"怎么(?:用|操作|弄|办|请假|报修|登记|批|设置|提醒|预约)|如何|能干(?:啥|什么)|都能干|能做什么|有什么功能|使用说明|操作说明|帮助|不会用")
REF = re.compile(r"(?i)(bx|fk|qj|tx)\s*(\d{1,6})")
NUM_REF = re.compile(r"(?<![\d:.月/-])(\d{1,4})\s*号(?!楼|线|人|日)(?:单子?|单|假条|访客)?")
LEAD_NUM = re.compile(r"^(\d{1,2}(?![\d:.点月号楼分人小个天周秒年])|\d{3,4}(?=\s|$))(?!\s*(?:教室|室|房|宿舍|楼|班))")
VERB_NUM = re.compile(r"(?:接单|完成|取消|催办|查询|评价|派单|退单|批准|驳回|出校|返校|核验|离开|收到)\s*(\d{1,4})(?!\d)")

# per record: (intent, pattern) tried in order
BX_VERBS = [("评价", r"评价|好评|差评|打分|\d\s*分|[1-5]\s*星|五星|满分|修得|不错|满意|很棒|给力"), ("催办", r"催|快点|能不能快|抓紧|怎么还没|还没人"),
            ("取消", r"取消|作废|不要了|撤了|撤掉|撤销|撤回|不用来了|不用修了|不修了|不用了|删掉"),
            ("派单", r"派|转给|让.{1,4}(?:去|修|处理|弄)|给.{1,4}(?:师傅)"),
            ("退单", r"退单|退掉|退一下|退了|退回|弄不了|修不了|不是我这块|处理不了"),
            ("完成", r"通了|修通|弄通|好了|弄好|修好|搞定|完成|通好|换好|处理好|已修|修完|弄完|已经好|解决了|已疏通|疏通了"),
            ("接单", r"接单|这就去|接了|我接|收到|过去|马上到|我来|在路上|这就去|马上去|马上来|去看看|下午去|现在去"),
            ("查询", r".")]
QJ_VERBS = [("驳回", r"驳回|不行|不批|不同意|不准|拒绝|不能批"), ("批准", r"批准|同意|可以|准了|批了|准假|ok|OK|行|代批|通过"),
            ("返校", r"返校|回来|回校|已返|进来了|到校|回到学校|进校"), ("出校", r"出校|走了|出去|放行|放.{0,2}走|走吧|接走|离校|出门"),
            ("核验", r"核验|查|能不能|能出|有没有|假条|可以走吗")]
FK_VERBS = [("离开", r"走了|离开|出去|离校|已离|出校|走人")]
TX_VERBS = [("取消提醒", r"取消|不用提醒|删|撤|不用发|不需要|不要了|关掉|停掉|不用了"), ("收到", r"收到|知道了"), ("完成", r"完成|做完|已交|交了|交到|已经|完毕|正常|查完|弄完|巡完|搞定"),
            ("收到", r".")]
LIST_QUERIES: list[tuple[str, str, set[str] | None]] = [
    ("巡查进度", r"巡查进度|巡查.{0,4}(?:到哪|怎么样|完了没|做完|情况)|巡到哪|几个点(?:没|还没|要)|哪几个点|点没(?:查|巡)|还剩.{0,4}点|没巡|"
               r"(?:消防|器材).{0,6}(?:检查|查).{0,4}(?:做了吗|完了吗|怎么样)", None),
    ("待派单", r"没派|待派|未派|派出去|积压|没分下去|还没分|没人接", {"admin"}),
    ("报修统计", r"统计|修了多少|多少单|平均多久|维修数据|汇总|报修情况", {"admin", "leader"}),
    ("我的任务", r"我的任务|我手上|没修的|我还有|我这还有|我的单子|我的活|要修的|派给我的|我要修|要修哪|修哪些|我今天修|活儿?有哪些|哪些活|什么活|有活吗", {"worker"}),
    ("我的报修", r"我的报修|我报的|我之前报的|我提交的(?:维修|报修)|我的维修单|报的修|我报过的|我(?:之前|以前)?提的(?:报修|修|单|那几个|那些)|我的那几个单子", None),
    ("在校访客", r"在校的?访客|访客.{0,4}在学校|还有谁没走|谁还没走|还在学校的|在校.*几个访客|学校里有几个访客|还没离开|外来人员|校外人员.{0,4}(?:还有|在)|"
               r"(?:还有|现在)几个(?:访客|外人)", {"guard", "admin", "leader"}),
    ("今日访客", r"今日访客|今天.*(?:来了多少|来过|访客|登记的|来了几)|都有谁来|几拨人", {"guard", "admin", "leader"}),
    ("今日预约", r"今日预约|约了谁|预约来访|今天.*预约|有谁要来|约好.{0,3}来|约了.{0,6}来的", None),
    ("待审批", r"待审批|没批|没处理|要我批|待批|要批的|需要审批|等我批", {"head_teacher", "admin", "leader"}),
    ("今日请假", r"今日请假|今天.*(?:请假|要出去的|出校的)|哪些孩子要出去", {"guard", "head_teacher", "admin", "leader"}),
    ("提醒列表", r"提醒列表|我的提醒|有啥提醒|哪些提醒|什么提醒|提醒都有|所有的?提醒|提醒.{0,4}列|列.{0,4}提醒|设了哪些", None),
    ("值班表", r"值班表|周末谁值|谁值班.*(?:周末|假期|国庆|元旦|春节)|(?:周末|国庆|元旦|春节|\d+月\d+[日号]|周[六日]).*(?:谁值|值班|我值|是我)", None),
    ("值班", r"谁值班|值班领导|我今天值班|今天值班|值班的是谁|今天谁值|哪位领导值|今天.{0,4}谁值", None),
]


def _t(value: datetime | Span | Recurrence) -> str:
    """A parsed time written back in the canonical grammar."""
    if isinstance(value, Span):
        if value.start.date() == value.end.date():
            return f"{value.start:%Y-%m-%d} {value.start:%H:%M}-{value.end:%H:%M}"
        return f"{value.start:%Y-%m-%d %H:%M}至{value.end:%Y-%m-%d %H:%M}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return value.describe()


_TIME_START = re.compile(
    r"每天|每周|每月|工作日|天天|今天|明天|后天|大后天|下下?周|这周|本周|下个?星期|周[一二三四五六日]|星期[一二三四五六日]|"
    r"\d{4}-\d|\d{1,2}月|\d{1,2}[点:：]|[一二两三四五六七八九十]{1,3}点|上午|下午|早上|中午|晚上|傍晚|凌晨|"
    r"\d+\s*(?:分钟|小时|秒)后|[一二两三四五六七八九十半]+个?(?:分钟|小时)后")


HOLIDAY_RELATIVE = re.compile(r"(?:元旦|国庆|春节|清明|五一|劳动节|端午|中秋|寒假|暑假|放假|开学).{0,3}(?:前|后)(?:一天|最后一天|那天|第一天)?")
_DATE_WORD = re.compile(r"今天|明天|后天|周|星期|月|每|工作日|\d{4}-|后$|小时后|分钟后")
_CLOCK = re.compile(r"(?:上午|下午|早上|中午|晚上|傍晚)?\s*(?:\d{1,2}[:：]\d{2}|[\d一二两三四五六七八九十]{1,3}点(?:半|一刻|[\d一二三四五六七八九十]{1,3}分?)?)"
                    r"(?:\s*(?:到|-|~|至)\s*(?:\d{1,2}[:：]\d{2}|[\d一二两三四五六七八九十]{1,3}点(?:半|一刻|[\d一二三四五六七八九十]{1,3}分?)?))?")


def _parse_at(text: str, start: int, now: datetime, kind: str) -> tuple[Any, int, int] | None:
    window = text[start:start + 30]
    try:
        value, rest = split_time_prefix(window, now, kind)  # type: ignore[arg-type]
    except TimeParseError:
        return None
    used = len(window.rstrip()) - len(rest) if rest else len(window.rstrip())
    if rest:
        used = window.find(rest, max(0, used - 1)) if window.find(rest, max(0, used - 1)) >= 0 else used
    return value, start, start + used


def find_time(text: str, now: datetime, kind: str) -> tuple[Any, str, str] | None:
    """The time expression of the message: one with a date word first, merged with a clock time said later
    (`周五 英语组教研 下午3:40` → 周五 15:40; `明天早上要去医院抽血八点到十点` → 明天 08:00-10:00)."""
    found = []
    pos = 0
    for m in _TIME_START.finditer(text):
        if m.start() < pos:
            continue
        got = _parse_at(text, m.start(), now, kind)
        if got is not None:
            found.append(got)
            pos = got[2]
    if not found:
        return None
    dated = [f for f in found if _DATE_WORD.search(text[f[1]:f[2]])]
    best = dated[0] if dated else found[0]
    piece = text[best[1]:best[2]]
    if not re.search(r"\d|点|全天|[:：]", piece) or re.fullmatch(r".*(?:上午|下午|早上|晚上|傍晚|中午)", piece):
        for m in _CLOCK.finditer(text, best[2]):
            clock = m.group(0).strip()
            if not clock or not re.search(r"\d|点", clock):
                continue
            try:
                value, rest = split_time_prefix(f"{piece}{clock}", now, kind)  # type: ignore[arg-type]
            except TimeParseError:
                continue
            if rest:
                continue
            rest = text[:best[1]] + " " + text[best[2]:m.start()] + " " + text[m.end():]
            return value, f"{piece}{clock}", rest.strip()
    return best[0], piece, _cut(text, best[1], best[2])


def _cut(text: str, start: int, end: int) -> str:
    return (text[:start] + " " + text[end:]).strip()


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*[,，]\s*(?:[,，]\s*)+", "，", text)
    text = re.sub(r"(?:(?<=^)|(?<=[\s,，]))[\u4e00-\u9fa5](?=[\s,，]|$)", "", text)
    text = re.sub(r"\s*[,，]\s*(?:[,，]\s*)+", "，", text)
    return text.strip(" ,，。.!！?？、~～:：")


def _own_ref(prefix: str, n: int) -> str:
    return f"{prefix}{n}"


# ------------------------------------------------------------------------------------------------------


class Understander:
    def __init__(self, ctx: Context, msg: Msg) -> None:
        self.ctx = ctx
        self.msg = msg
        self.me = ctx.me
        self.roles = set(self.me.roles)
        self.now = ctx.now
        self._lex: lx.Lexicon | None = None

    @property
    def lex(self) -> lx.Lexicon:
        if self._lex is None:
            self._lex = lx.lexicon(self.ctx.session)
        return self._lex

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    # --- entry ---
    def plan(self) -> Plan:
        m = self.msg
        s = m.n
        if m.only_emoji:
            if m.stars:
                return self.rate_without_ref(s)
            return Plan(CHAT, "none", reply="👌" if m.ok_emoji else "😊")
        for rule in (self.courtesy, self.help_question, self.with_ref, self.list_query, self.inspect, self.gate,
                     self.decide_by_name, self.worker_jobs, self.admin_assign, self.reporter_refs, self.receipt,
                     self.duty_swap, self.remind, self.leave, self.booking, self.repair):
            got = rule(s)
            if got is not None:
                return got
        return Plan(HINT, "")

    # --- courtesy and help ---
    def courtesy(self, s: str) -> Plan | None:
        bare = re.sub(r"[\s,，.。!！~～]+", "", s)
        if not bare:
            return Plan(CHAT, "none", reply="您好！")
        m = THANKS.match(bare)
        if m and (len(bare) - len(m.group(0)) <= 6) and not REF.search(s) and not re.search(r"\d", s):
            if bare.startswith(("收到", "好", "知道了", "ok", "OK", "明白")) and self._receipts():
                return None  # a reminder waits for this person's 回执
            if re.match(r"谢|多谢|感谢|辛苦", bare):
                return Plan(CHAT, "none", reply="不客气，有事随时发消息给我。")
            if re.match(r"早|你好|您好|上午好|下午好|晚上好|在吗|在不在|老师在吗", bare):
                return Plan(CHAT, "none", reply="您好！我是后勤助手：报修、访客、请假、提醒、值班都可以直接跟我说。发送「帮助」查看示例。")
            return Plan(CHAT, "none", reply="好的。有需要随时发消息给我（发送「帮助」查看能做什么）。")
        return None

    def help_question(self, s: str) -> Plan | None:
        if HELP_Q.search(s) and not REF.search(s) and len(s) <= 16:
            return run("帮助", "帮助")
        return None

    # --- record numbers ---
    def _refs(self, s: str) -> list[tuple[str | None, int, int, int]]:
        out: list[tuple[str | None, int, int, int]] = [(m.group(1).upper(), int(m.group(2)), m.start(), m.end())
                                                        for m in REF.finditer(s)]
        if out:
            return out
        for m in NUM_REF.finditer(s):
            out.append((None, int(m.group(1)), m.start(), m.end()))
        if not out:
            m = VERB_NUM.search(s) or LEAD_NUM.match(s)
            if m and not find_phone(s):
                out.append((None, int(m.group(1)), m.start(1), m.end(1)))
        return out

    def _prefix_for(self, s: str) -> str | None:
        """A bare number's record kind, from the sender's roles and the verb used."""
        if self.has("guard") and re.search(r"返|回来|回校|进来", s):
            return "QJ"
        if self.has("guard") and re.search(r"出校|放行|核验|假", s):
            return "QJ"
        if self.has("guard") and re.search(r"走了|出去|离开|离校", s):
            return "FK"
        if self.has("head_teacher", "admin", "leader") and re.search(r"同意|可以|批|驳回|不行|准|假", s):
            return "QJ"
        if self.has("admin") and re.search(r"取消", s) and not re.search(r"单子|报修", s):
            return None
        if self.has(*STAFF_ROLES - {"guard"}) or re.search(r"单子?", s):
            return "BX"
        return None

    def with_ref(self, s: str) -> Plan | None:
        refs = self._refs(s)
        if not refs:
            return None
        prefix, n, start, end = refs[0]
        if prefix is None and re.search(r"值班|换班|顶他|顶我|顶一下|换一下|我值|他值|她值", s) and not re.search(r"单", s):
            return None  # `我顶他3号`: a duty day, not ticket 3
        if prefix is None:
            prefix = self._prefix_for(s)
            if prefix is None:
                return ask("取消", f"「{n}」是报修单 BX{n} 还是提醒 TX{n}？请回复「取消 BX{n}」或「取消提醒 TX{n}」。",
                           编号=str(n))
        rest = _cut(s, start, end)
        ref = _own_ref(prefix, n)
        if prefix == "BX":
            return self._bx(ref, rest, s)
        if prefix == "QJ":
            return self._qj(ref, rest)
        if prefix == "FK":
            for intent, pat in FK_VERBS:
                if re.search(pat, rest) or self.has("guard"):
                    return run(intent, f"离开 {ref}", 编号=ref)
            return run("查询", f"离开 {ref}", 编号=ref)
        return self._tx(ref, rest)

    def _verb(self, table: list[tuple[str, str]], rest: str) -> str:
        for intent, pat in table:
            if re.search(pat, rest):
                return intent
        return table[-1][0]

    def _bx(self, ref: str, rest: str, s: str) -> Plan:
        verbs = BX_VERBS
        if not self.has("worker"):
            verbs = [v for v in verbs if v[0] not in ("接单", "完成", "退单")]
        if not self.has("admin"):
            verbs = [v for v in verbs if v[0] != "派单" or self.has("teacher", "head_teacher", "leader")]
        intent = self._verb(verbs, rest) if not (self.msg.stars and not self.has("worker")) else "评价"
        words = {"查询": r"现在|什么情况|进度|到哪一?步了?|怎么样了?|有人管吗|查一下|查下|查|看一下|[?？]|的|那个|我报的|这个",
                 "催办": r"催办|催一下|催催|催半|催|一下", "取消": r"取消|撤了吧?|撤掉|撤销|不用来了|不用修了|吧"}
        note = _clean(re.sub(words.get(intent, r"^$"), " ", rest)) if intent in words else ""
        if intent == "评价":
            score, comment = self._score(rest)
            if score is None:
                return ask("评价", f"请给 {ref} 打个分（1-5），例如：评价 {ref} 5 修得很及时", 编号=ref)
            cmd = f"评价 {ref} {score}" + (f" {comment}" if comment else "")
            return run("评价", cmd, 编号=ref, 评分=score, **({"评语": comment} if comment else {}))
        if intent == "派单":
            return self._assign(ref, rest)
        if intent in ("完成", "退单"):
            pat = dict(BX_VERBS)[intent]
            note = _clean(re.sub(rf"^(?:\s|{pat}|了|，|,)+", "", rest))
            note = _clean(re.sub(rf"(?:{pat})$", "", note))
            if intent == "退单" and not note:
                return ask("退单", f"请说明退单原因，例如：退单 {ref} 缺少配件", 编号=ref)
            if intent == "退单":
                return run("退单", f"退单 {ref} {note}", 编号=ref, 原因=note)
            return run("完成", f"完成 {ref} {note}".strip(), 编号=ref, **({"说明": note} if note else {}))
        if intent == "接单":
            return run("接单", f"接单 {ref}", 编号=ref)
        if intent == "取消":
            return run("取消", f"取消 {ref} {note}".strip(), 编号=ref)
        if intent == "催办":
            return run("催办", f"催办 {ref}", 编号=ref)
        return run("查询", f"查询 {ref}", 编号=ref)

    def _score(self, rest: str) -> tuple[int | None, str]:
        if self.msg.stars:
            score: int | None = min(self.msg.stars, 5)
            return score, _clean(rest)
        m = re.search(r"([1-5一二两三四五])\s*(?:分|星|颗星)|满分|(?:评价|评分)\s*([1-5])(?!\d)|(?<!\d)([1-5])(?!\d)", rest)
        if not m:
            if re.search(r"好评", rest):
                return 5, _clean(re.sub(r"给个好评|好评", "", rest))
            return None, ""
        raw = m.group(1) or m.group(2) or m.group(3)
        score = 5 if raw is None else cn_int(raw)
        comment = _clean(re.sub(r"评价|给个好评|好评|打分", " ", rest[:m.start()] + " " + rest[m.end():]))
        return score, comment

    def _assign(self, ref: str, rest: str) -> Plan:
        workers = lx.unique(lx.staff_in(self.lex, rest, {"worker"}))
        if len(workers) == 1:
            w = workers[0]
            return run("派单", f"派单 {ref} {w.name}", 编号=ref, 维修工=w.name)  # type: ignore[attr-defined]
        names = "、".join(p.name for p in self.lex.staff if "worker" in p.roles)
        return ask("派单", f"{ref} 派给哪位维修工？（{names}）例如：派单 {ref} {names.split('、')[0] if names else '姓名'}",
                   编号=ref)

    def _qj(self, ref: str, rest: str) -> Plan:
        verbs = QJ_VERBS
        if self.has("guard"):
            verbs = [v for v in verbs if v[0] not in ("批准", "驳回")]
        elif self.has("head_teacher", "admin", "leader"):
            verbs = [v for v in verbs if v[0] in ("批准", "驳回")] + [("核验", r".")]
        if self.has("parent", "teacher") and not self.has("guard", "head_teacher", "admin", "leader"):
            if re.search(r"取消|撤|不请了|不用了", rest):
                return ask("取消", f"请假单提交后不能自己撤回，请联系班主任驳回 {ref}（或请班主任知悉）。", 编号=ref)
            return run("我的请假", "我的请假", 编号=ref)
        intent = self._verb(verbs, rest)
        if intent == "驳回":
            reason = _clean(re.sub(r"驳回|不行|不批|不同意|不准|拒绝|理由是|因为", " ", rest))
            if not reason:
                return ask("驳回", f"请写上驳回理由，例如：驳回 {ref} 当天有考试", 编号=ref)
            return run("驳回", f"驳回 {ref} {reason}", 编号=ref, 理由=reason)
        if intent == "核验" and self.has("head_teacher", "admin", "leader") and not self.has("guard"):
            return ask("批准", f"要批准 {ref} 吗？回复「批准 {ref}」或「驳回 {ref} 理由」。", 编号=ref)
        return run(intent, f"{intent} {ref}", 编号=ref)

    def _tx(self, ref: str, rest: str) -> Plan:
        intent = self._verb(TX_VERBS, rest)
        if intent == "完成":
            note = _clean(re.sub(r"^(?:完成|收到)", "", rest).strip())
            return run("完成", f"完成 {ref} {note}".strip(), 编号=ref, **({"情况": note} if note else {}))
        if intent == "取消提醒":
            return run("取消提醒", f"取消提醒 {ref}", 编号=ref)
        return run("收到", f"收到 {ref}", 编号=ref)

    # --- inspections ---
    def inspect(self, s: str) -> Plan | None:
        if not self.has(*STAFF_ROLES):
            return None
        code = re.search(r"(?i)(?<![A-Za-z])([A-Z]{2}-?\d{2,3})(?!\d)", s)
        lost = re.search(r"码.{0,6}(?:扫不|看不清|撕|坏|掉|没了|不见)|扫不出|扫不了|我到了|已经到了|手动记|补记|(?<!登)记一下", s)
        if find_phone(s) or re.search(r"登记|访客", s):
            lost = None
        if lost and (code or find_place(self.lex, s) or re.search(r"灭火器|消防栓|配电", s)):
            if code:
                point = code.group(1).upper()
            else:
                text = re.sub(r"(?:的|那个|这个)?(?:二维码|码).*$|这(?:边|里)?扫不.*$|扫不.*$|我(?:已经)?到了.*$", "", s)
                text = re.sub(r"^.*巡查\s*", "", s) if "巡查" in s else text
                point = _clean(re.sub(r"手动记一下|记一下|补记", "", text)).replace(" ", "")
            if point and not code:
                try:
                    point = inspection.find_checkpoint(self.ctx.session, point).code  # 后厨灭火器 → XF03
                except UserError:
                    pass  # not one checkpoint: the handler says which, or that none is called so
            if point:
                return run("巡查", f"巡查 {point}", 点位=point)
        waiting = None
        if self.has("guard", "worker", "admin") and (
                re.search(r"正常|没问题|都好|异常|灭火器|消防栓|铅封|压力|配电柜|指示灯|门锁|锁着|关了|关好", s) or has_fault(s)):
            waiting = directory.scan_waiting(self.ctx.session, self.me, self.now)
        if not waiting:
            if re.search(r"(?:^|\s)异常$", s) and len(s) > 3:
                note = _clean(re.sub(r"异常$", "", s))
                return run("异常", f"异常 {note}", 说明=note)
            return None
        if re.search(r"(?:^|\s)异常$|^异常", s):
            note = _clean(re.sub(r"^异常|异常$", "", s))
            return run("异常", f"异常 {note}", 说明=note) if note else None
        calm = re.sub(r"没(?:有)?(?:什么)?问题|无问题|没毛病", " ", s)
        if has_fault(calm) or re.search(r"少了|没了|丢了|过期|不够|不足|缺", calm):
            note = _clean(s)
            return run("异常", f"异常 {note}", 说明=note)
        if re.search(r"正常|没问题|都好|挺好|锁着|锁好|关了|关好", s):
            return run("正常", "正常")
        return None

    # --- the gate ---
    def gate(self, s: str) -> Plan | None:
        if not self.has("guard"):
            return None
        phone = find_phone(s)
        if not phone and re.search(r"(?<!\d)1[0-2]\d{9}(?!\d)", s):  # 11 digits but not a mainland mobile
            return ask("访客", "手机号不对（大陆手机号应为1[3-9]开头的11位），请核对后发送手机号。",
                       dialog=_fill("访客", {}, "手机"))
        if phone or re.search(r"登记|访客|来了个|来了一?位|来了两|有个.*(?:要进|来找|来送|来了)|要进来|有车要进", s):
            return self.visitor(s, phone)
        kids = lx.unique(lx.students_in(self.lex, s))
        if kids:
            return self._gate_student(s, kids)
        if re.search(r"走了|出去了|离开|离校|已离|出校了|出门了|走人", s):
            return self._visitor_out(s)
        if re.search(r"^(?:出校|返校|核验|放行)$", s):
            return ask(s, "请写学生姓名或假条编号，例如：出校 QJ5 或 出校 李明")
        if re.search(r"^(?:离开)$", s):
            return ask("离开", "哪位访客离开？请写编号，例如：离开 FK7（发送「在校访客」查看）")
        if re.search(r"孩子|学生", s) and re.search(r"回来|出去|走了", s):
            return ask("返校", "是哪位学生？请写姓名或假条编号，例如：返校 QJ5")
        return None

    def _gate_student(self, s: str, kids: list[Any]) -> Plan:
        if len(kids) > 1:
            return ask("核验", "是哪位学生？" + "、".join(k.name for k in kids))
        kid = kids[0]
        name = kid.name
        if re.search(r"返校|回来|回校|已返|进来|到校|进校", s):
            intent = "返校"
        elif re.search(r"出校|走了|出去|放行|接走|离校|出门", s) and not re.search(r"能|吗|可以", s):
            intent = "出校"
        elif re.search(r"核验|能|吗|有没有|假条|查", s):
            intent = "核验"
        else:
            return ask("核验", f"{name}：要核验、出校还是返校？例如：核验 {name}", 学生=name)
        return run(intent, f"{intent} {kid.klass} {name}", 学生=name)

    def _visitor_out(self, s: str) -> Plan | None:
        inside = directory.visitors_in(self.ctx.session)
        named = [e for e in inside if e.name and (e.name in s or (len(e.name) >= 2 and e.name[:2] in s))]
        if len(named) == 1:
            e = named[0]
            return run("离开", f"离开 FK{e.id}", 姓名=e.name, 编号=f"FK{e.id}")
        if not named and inside:  # 新华书店那个送教材的走了: by what they came for
            common = set("的了一个那这是来送找人们他她走出去离开校门")
            scored = sorted(((sum(1 for ch in set(e.purpose or "") - common if ch in s), e) for e in inside),
                            key=lambda x: -x[0])
            if scored[0][0] >= 2 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
                e = scored[0][1]
                return run("离开", f"离开 FK{e.id}", 编号=f"FK{e.id}", 姓名=e.name)
        m = re.search(rf"(?<![姓\u4e00-\u9fa5])([{''.join(_SURNAMES)}][\u4e00-\u9fa5]{{1,2}}?)(?<!的)(?:他们|她们|一行)?(?:已经)?(?:走了|出去了|离开|离校|出校了|出门了)", s)
        if m and not named:  # not on campus (left already, or never came): the service says so
            return run("离开", f"离开 {m.group(1)}", 姓名=m.group(1))
        m = re.search(r"姓([\u4e00-\u9fa5])的", s)
        if m:
            same = [e for e in inside if e.name.startswith(m.group(1))]
            if len(same) == 1:
                return run("离开", f"离开 FK{same[0].id}", 姓名=same[0].name)
            if same:
                return ask("离开", "姓" + m.group(1) + "的在校访客有：" + "、".join(f"FK{e.id} {e.name}" for e in same)
                           + f"。请回复「离开 FK{same[0].id}」这样的编号。", 姓名=m.group(1))
        return None

    def visitor(self, s: str, phone: tuple[str, int, int] | None) -> Plan:
        f: dict[str, Any] = {}
        text = s
        if phone:
            f["手机"] = phone[0]
            text = _cut(text, phone[1], phone[2])
        elif SHORT_PHONE.search(s):
            f["手机"] = ""
        idm = ID_NUMBER.search(text)
        if idm:
            f["身份证"] = idm.group(1).upper()
            text = _cut(text, idm.start(), idm.end())
            try:
                check_id_number(f["身份证"])
            except UserError as exc:
                bad = f.pop("身份证")
                return ask("访客", f"{exc.message} 其他信息已记下，请重新发送身份证号。", dialog=_fill("访客", f, "身份证"),
                           身份证=mask_id(bad), **{k: v for k, v in f.items()})
        pm = PLATE.search(text)
        if pm:
            f["车牌"] = re.sub(r"[·•\s\-]", "", pm.group(0)).upper()
            text = _cut(text, pm.start(), pm.end())
        cm = re.search(r"(\d{1,2}|[一二两三四五六七八九十])\s*(?:个人|人|位|个老师|个师傅|个工人)", text)
        if cm:
            n = cn_int(cm.group(1))
            if n and n > 1:
                f["人数"] = n
            text = _cut(text, cm.start(), cm.end())
        host = re.search(r"找\s*((?:[七八九]\s*[(（]?\d[)）]?\s*班)?(?:语文|数学|英语|体育|科学|信息)?[\u4e00-\u9fa5]{1,4}?)(?:老师|校长|主任|师傅)?(?=$|[\s,，。的]|听|谈|送|拿|办|面试|签|交|商量|说|有)", text)
        if host:
            who = self._host(host.group(0)[1:])
            if who:
                f["被访人"] = who
            text = _cut(text, host.start(), host.end())
        name = None
        nm = re.search(r"(?:带队的?(?:是|叫)?|带头的?(?:是|叫)?|名叫|叫|姓名|联系人|新的叫|名字是?)\s*[:：]?\s*([\u4e00-\u9fa5]{2,3}?)(?=$|[\s,，。\d的]|电话|手机|来|是)", text)
        if nm:
            name = nm.group(1)
            text = _cut(text, nm.start(), nm.end())
        else:
            for tok in re.split(r"[\s,，。:：]+", text):
                core = re.sub(r"^(?:访客|登记一下|登记|家长)", "", tok)
                core = re.sub(r"^.{1,6}?(?:队|公司|店|厂|局|委|的)(?=[\u4e00-\u9fa5]{2,3}$)", "", core)
                if 2 <= len(core) <= 3 and re.fullmatch(r"[\u4e00-\u9fa5]+", core) and core[0] in _SURNAMES \
                        and not re.search(r"送|来|修|装|检|查|的|找|面试|接|拿|换|量|清|听|谈|水|菜", core):
                    name = core
                    text = text.replace(core, " ", 1)
                    break
        if name:
            f["姓名"] = name
        purpose = re.sub(r"访客登记|访客|登记一下|登记|电话|手机号?|身份证号?|车牌号?|带队的?|带头的?|有个|来了个|来了|要进来|家长(?=\s|$)",
                         " ", text)
        purpose = _clean(re.sub(r"\s+", " ", purpose))
        purpose = re.sub(r"^(?:是|个|的|叫)+|(?:的|了)+$", "", purpose).strip()
        if purpose:
            f["事由"] = purpose
        missing = [k for k in ("姓名", "手机", "事由") if not f.get(k)]
        if "手机" in f and not f["手机"]:
            return ask("访客", "手机号不对（应为11位），请核对后发送手机号。", dialog=_fill("访客", f, "手机"), **f)
        if missing:
            said = "、".join(f"{k}：{_masked(k, v)}" for k, v in f.items() if v)
            q = {"姓名": "缺少访客姓名：请发送访客姓名", "手机": "缺少手机号：请发送访客手机号",
                 "事由": "缺少事由：请发送来访事由"}[missing[0]]
            head = f"已记下（{said}）。" if said else f"登记访客。{USAGE}\n也可以一步步来："
            return ask("访客", f"{head}{q}（发送「取消」退出）。", dialog=_fill("访客", f, missing[0]), **f)
        return run("访客", visitor_command(f), **f)

    def _host(self, raw: str) -> str | None:
        who = lx.resolve_person(self.lex, raw)
        if who is not None:
            return who.name
        return raw or None  # not one known person: keep what was typed (the service says 不在系统中)

    # --- decisions and jobs by name or description ---
    def decide_by_name(self, s: str) -> Plan | None:
        if not self.has("head_teacher", "admin", "leader"):
            return None
        yes = re.search(r"同意|批了|批准|可以|准了|ok|行", s) and not re.search(r"不同意|不批|不行|不准", s)
        if not lx.students_in(self.lex, s) and not re.search(r"同意|批了|批准|准了|驳回|不同意|不批", s):
            return None
        no = re.search(r"驳回|不同意|不批|不行|不准", s)
        if not (yes or no):
            return None
        pending = self._pending_slips()
        kids = lx.unique(lx.students_in(self.lex, s))
        if kids:
            mine = [sl for sl in pending if sl.student_id in {k.id for k in kids}]
            name = kids[0].name
        else:
            if len(s) > 8 or re.search(r"吧|了$", s) and not pending:
                return None
            mine, name = pending, ""
        fields = {"学生": name} if name else {}
        if len(mine) != 1:
            listing = "、".join(f"QJ{sl.id}" for sl in mine) or "（没有待审批的请假）"
            return ask("批准" if yes else "驳回", f"要审批哪一张？{listing}。请回复「批准 QJ编号」。", **fields)
        ref = f"QJ{mine[0].id}"
        if yes:
            return run("批准", f"批准 {ref}", 编号=ref, **fields)
        reason = _clean(re.sub(r"驳回|不同意|不批|不行|不准|理由是|因为|的?假|那个|" + (name or "^$"), " ", s))
        if not reason:
            return ask("驳回", f"请写上驳回理由，例如：驳回 {ref} 当天有考试", 编号=ref, **fields)
        return run("驳回", f"驳回 {ref} {reason}", 编号=ref, 理由=reason, **fields)

    def _pending_slips(self) -> list[Any]:
        return leave.pending_for(self.ctx.session, self.me, self.now)

    def _best(self, tickets: list[Any], s: str) -> list[Any]:
        """The ticket a description means (宿舍厕所那个单子 → BX9): shared characters of place and fault,
        then rapidfuzz on the whole, and only a clear winner."""
        if len(tickets) <= 1:
            return tickets
        common = set("楼的了一个那这是有不")

        def score(t: Any) -> float:
            chars = set(f"{t.place}{t.description}") - common
            return sum(1 for ch in chars if ch in s) + fuzz.partial_ratio(f"{t.place}{t.description}", s) / 100

        scored = sorted(((score(t), t) for t in tickets), key=lambda x: -x[0])
        if scored[0][0] >= 2 and scored[0][0] - scored[1][0] >= 1:
            return [scored[0][1]]
        return tickets

    def worker_jobs(self, s: str) -> Plan | None:
        if not self.has("worker"):
            return None
        done = re.search(dict(BX_VERBS)["完成"], s)
        take = re.search(r"接单|我接了|我来弄|我来|过去|马上到|马上去", s)
        back = re.search(dict(BX_VERBS)["退单"], s)
        if not (done or take or back):
            return None
        jobs = directory.worker_jobs(self.ctx.session, self.me)
        if take and not done:
            jobs = [t for t in jobs if t.state == "已派单"] or jobs
        pick = self._best(jobs, s)
        intent = "退单" if back else ("完成" if done else "接单")
        if len(pick) != 1 or (len(jobs) == 1 and len(s) <= 6):
            listing = "、".join(f"{t.ref}（{t.place}{t.description[:8]}）" for t in jobs) or "（您目前没有维修任务）"
            if len(jobs) == 1:  # one job and no words about it: say which before changing it
                t = jobs[0]
                return confirm(intent, f"{intent} {t.ref}", f"{intent} {t.ref}（{t.place}，{t.description[:20]}）吗？",
                               编号=t.ref)
            return ask(intent, f"是哪一张？{listing}。请回复「{intent} BX编号」。")
        ref = pick[0].ref
        return self._bx(ref, s, s)

    def reporter_refs(self, s: str) -> Plan | None:
        rating = re.search(r"[1-5]\s*(?:分|星|颗星)|五星|好评|差评|打分|评价|满分|打个分", s) or self.msg.stars
        pointer = re.search(r"那个|那单|那张|这单|的单", s) and re.search(r"催|撤|取消|不用修|作废|不要了", s)
        if not re.search(r"单子|那个报修|报的修|那个修|那单", s) and not re.search(r"^帮我催|^催一下|催一下$|^催办$", s) \
                and not pointer and not (rating and re.search(r"那个|那单|那张|这单", s)):
            return None
        if re.search(r"派给|让.{1,4}去|转给|派单", s):
            return None
        if re.search(r"我报的那几个|那几个单子|那些单子|我报的修.*(?:好|到哪|怎么)|都到哪一步", s):
            return None
        if rating:
            done = directory.rateable_tickets(self.ctx.session, self.me)
            pick = self._best(done, s)
            if len(pick) != 1:
                listing = "、".join(f"{t.ref}（{t.place}{t.description[:8]}）" for t in done) or "（没有待评价的报修）"
                return ask("评价", f"评价哪一张？{listing}。请回复「评价 BX编号 分数(1-5) 评语」。")
            return self._bx(pick[0].ref, re.sub(r"^.*?(?:那个单子|那单|那个|那张|单子)", "", s), s)
        own = directory.open_tickets(self.ctx.session, self.me)
        pick = self._best(own, s)
        verb = "催办" if "催" in s else ("取消" if re.search(r"不用修|撤|取消|不用了", s) else "查询")
        if len(pick) != 1:
            listing = "、".join(f"{t.ref}（{t.place}{t.description[:8]}）" for t in own) or "（没有进行中的报修）"
            return ask(verb, f"是哪一张报修？{listing}。请回复「{verb} BX编号」。")
        return self._bx(pick[0].ref, s, s)

    def admin_assign(self, s: str) -> Plan | None:
        if not self.has("admin") or not re.search(r"派给|派单|转给|让.{1,4}师傅", s):
            return None
        if re.search(r"都转给|全部转给|都派给", s):
            return ask("派单", "批量改派请逐张发送「派单 BX编号 维修工」，我会逐张确认。")
        if s.strip() == "派单":
            return ask("派单", "请写编号和维修工，例如：派单 BX12 刘建国（发送「待派单」查看未派的报修）")
        pick = self._best(directory.all_open_tickets(self.ctx.session), s)
        if len(pick) != 1:
            return ask("派单", "派哪一张？请回复「派单 BX编号 维修工」（发送「待派单」查看）。")
        return self._assign(pick[0].ref, s)

    def _receipts(self) -> list[Any]:
        return directory.pending_receipts(self.ctx.session, self.me)

    def receipt(self, s: str) -> Plan | None:
        if re.search(r"提醒收到|收到提醒|提醒.{0,3}收到了", s):
            waiting = self._receipts()
            if len(waiting) == 1:
                return run("收到", f"收到 TX{waiting[0].id}", 编号=f"TX{waiting[0].id}")
            return Plan(CHAT, "收到", reply="好的，已知悉。")
        if not re.match(r"收到|好的|知道了|明白|ok|OK|完成了|做完了|已完成", s) or len(s) > 12:
            return None
        waiting = self._receipts()
        if len(waiting) == 1:
            r = waiting[0]
            if re.match(r"完成了|做完了|已完成", s):
                return run("完成", f"完成 TX{r.id}", 编号=f"TX{r.id}")
            return run("收到", f"收到 TX{r.id}", 编号=f"TX{r.id}")
        if waiting:
            return ask("收到", "您有多条提醒待确认：" + "、".join(f"TX{r.id}" for r in waiting) + "，请回复「收到 TX编号」。")
        return None

    def duty_swap(self, s: str) -> Plan | None:
        if not self.has("leader", "admin"):
            return None
        if not re.search(r"换班|换个班|调班|换一下班|顶一下|顶我|替我|帮我值|代我值|改成.{1,5}值|换成|跟.{1,5}换一下|对调|互换|我顶他", s):
            return None
        text = re.sub(r"这个?(?:星期|礼拜)|这周", "本周", fix_dates(s))
        text = text.replace("元旦", "1月1日").replace("国庆", "10月1日")
        text = re.sub(r"下个?(?:星期|礼拜)", "下周", text)
        days: list[datetime] = []
        month = None
        for m in re.finditer(r"(?:本|下下?)?周[一二三四五六日]|\d{1,2}月\d{1,2}日|(?<![\d月])\d{1,2}[号日]|今天|明天|后天", text):
            word = m.group(0)
            if re.fullmatch(r"\d{1,2}[号日]", word) and month:
                word = f"{month}月{word[:-1]}日"
            mm = re.match(r"(\d{1,2})月", word)
            if mm:
                month = mm.group(1)
            try:
                when, _ = split_time_prefix(word, self.now, "moment")  # type: ignore[arg-type]
            except TimeParseError:
                continue
            if isinstance(when, datetime) and when not in days:
                days.append(when)
        others = [p for p in lx.unique(lx.staff_in(self.lex, s, {"leader"})) if p.id != self.me.id]  # type: ignore[attr-defined]
        if not days:
            who = f"换给{others[0].name}" if len(others) == 1 else "换给谁"  # type: ignore[attr-defined]
            return ask("换班", f"换哪一天的值班，{who}？例如：换班 10月2日 孙海燕（两天互换：换班 10月2日 10月3日）。",
                       **({"新": others[0].name} if len(others) == 1 else {}))  # type: ignore[attr-defined]
        if len(days) == 2:
            a, b = days
            return run("换班", f"换班 {a:%Y-%m-%d} {b:%Y-%m-%d}", 日期=f"{a:%Y-%m-%d}", 互换日期=f"{b:%Y-%m-%d}")
        target = re.search(r"(?:改成|换成|让|给|请)\s*([\u4e00-\u9fa5]{1,4}?)(?:来)?值", s)
        if target:
            picked = lx.resolve_person(self.lex, target.group(1), {"leader"})
            others = [picked] if picked is not None else others
        if len(others) != 1:
            return ask("换班", f"{days[0]:%m月%d日}的值班换给哪位领导？例如：换班 {days[0]:%m月%d日} 孙海燕。")
        new = others[0].name  # type: ignore[attr-defined]
        return run("换班", f"换班 {days[0]:%Y-%m-%d} {new}", 日期=f"{days[0]:%Y-%m-%d}", 新=new)

    # --- questions about lists ---
    def list_query(self, s: str) -> Plan | None:
        if s.startswith("提醒") and re.search(r"@|\d|明天|每", s):
            return None
        for intent, pat, roles in LIST_QUERIES:
            if re.search(pat, s) and (roles is None or self.has(*roles)):
                if intent == "我的报修" and re.search(FAULT_HINT, s) and find_place(self.lex, s):
                    continue
                if intent in ("值班", "值班表") and re.search(r"换|顶|替我|代我|改成", s):
                    continue
                if intent == "我的报修" and re.search(r"撤|取消|不用修|催|[1-5一二三四五]\s*[分星]|评", s):
                    continue
                return run(intent, intent)
        if re.search(r"请的假|请假记录|我的请假|请假.*批了没|假批了没|假.*批了吗|假条.{0,6}(?:批|怎么样|通过)|批下来了", s) \
                and self.has("parent", "teacher", "head_teacher"):
            return run("我的请假", "我的请假")
        return None

    # --- reminders ---
    def remind(self, s: str) -> Plan | None:
        trigger = re.search(r"提醒(?:我|一下|他们|大家|各位|全体)?|叫我|喊我|提示我|记得叫我", s)
        if not trigger:
            return None
        if re.search(r"删|取消|撤|不用|不要了|不需要|关掉|停掉|关了吧", s):
            return self._cancel_reminder(s)
        text = fix_dates(s)
        receipt = bool(re.search(r"回个话|回执|回复确认|回个信|确认收到|回一下|回个消息|回个信息|回复一下|回我一下|报个平安", text))
        targets = re.findall(r"@([^\s,@，]+)", text)
        text = re.sub(r"@[^\s,@，]+", " ", text)
        targets = list(dict.fromkeys(targets))
        role_words = [("@班主任", r"各位班主任|班主任们?"), ("@教师", r"全体教师|全体老师|所有老师|老师们"),
                      ("@门卫", r"门卫"), ("@维修工", r"维修工|维修师傅"), ("@领导", r"校领导|领导们"),
                      ("@全体", r"全体人员|全体|大家|所有人")]
        for label, pat in role_words:
            if re.search(rf"提醒\s*(?:{pat})|(?:{pat}).{{0,3}}(?:提醒)", text):
                if label[1:] not in targets:
                    targets.append(label[1:])
                text = re.sub(pat, " ", text, count=1)
        t = find_time(text, self.now, "when")
        fields: dict[str, Any] = {"对象": [f"@{x}" for x in targets] or ["@本人"]}
        if not targets and re.search(r"他们|她们", text):
            return ask("提醒", "提醒哪些人？请用 @姓名 或 @班主任/@教师/@门卫/@维修工/@全体 写明对象，并写具体时间。", **fields)
        if HOLIDAY_RELATIVE.search(text):
            return ask("提醒", "请写具体日期，例如：12月31日 15:00（相对节假日的日期我还不能换算）。", **fields)
        if t is None:
            rest = _clean(re.sub(r"提醒(?:我|一下|他们|大家)?|叫我|喊我|提示我|记得", " ", text))
            if rest:
                fields["内容"] = rest
            return ask("提醒", "什么时候提醒？请写具体时间，例如：明天8:00、周五下午3点、20分钟后。",
                       dialog=_fill("提醒", fields, "时间"), **fields)
        value, when_text, content = t
        when_text = when_text.strip()
        fields["时间"] = when_text
        content = re.sub(r"(?:做完|完成后|弄完|查完)?(?:回个消息|回个信息|回复一下|回我一下)", " ", content)
        content = re.sub(r"提醒(?:我|一下|他们|大家|各位)?|叫我|喊我|提示我|记得|他们|一下|检查完回个话|回个话|回执|需要|需", " ", content)
        content = _clean(re.sub(r"^(?:去|要)?\s*", "", _clean(content)))
        content = re.sub(r"^(?:要|的)", "", content).strip()
        if receipt and "回个话" in s:
            content = _clean(content + " 检查完回个话") if "检查完回个话" in s else content
        if not content:
            return ask("提醒", f"好的，{when_text}提醒您什么事？请发送提醒内容。", dialog=_fill("提醒", fields, "内容"),
                       **fields)
        fields["内容"] = content
        if receipt:
            fields["回执"] = True
        if isinstance(value, datetime) and "后" not in when_text:
            when_text = _t(value)
        labels = " ".join(f"@{x}" for x in targets)
        cmd = f"提醒 {when_text} {content}" + (f" {labels}" if labels else "") + (" 需回执" if receipt else "")
        return run("提醒", cmd, **fields)

    def _cancel_reminder(self, s: str) -> Plan:
        """`把周四给家长回电话那个提醒删掉`: the one reminder of mine the words describe — never a new one."""
        mine = directory.my_reminders(self.ctx.session, self.me)
        common = set("提醒那个的了删掉取消撤不用我把给")
        scored = sorted(((sum(1 for ch in set(r.text) - common if ch in s), r) for r in mine), key=lambda x: -x[0])
        if scored and scored[0][0] >= 2 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
            r = scored[0][1]
            return run("取消提醒", f"取消提醒 TX{r.id}", 编号=f"TX{r.id}")
        listing = "、".join(f"TX{r.id}（{r.text[:10]}）" for r in mine) or "（您没有待提醒的事项）"
        return ask("取消提醒", f"要取消哪一条提醒？{listing}。请回复「取消提醒 TX编号」。")

    # --- leave ---
    def leave(self, s: str) -> Plan | None:
        if not self.has("parent", "teacher", "head_teacher"):
            return None
        explicit = bool(re.search(r"请假|请个假|请.{1,3}天假|请半天假|病假|事假|清假|假条", s))
        if HOLIDAY_RELATIVE.search(s):
            return ask("请假", "请写具体日期和时间，例如：9月30日 15:00-18:00（相对节假日的日期我还不能换算）。")
        kids: list[Any] = lx.unique(lx.students_in(self.lex, s))
        mine = directory.my_children(self.ctx.session, self.me) if self.has("parent") else []
        text = re.sub(r"半天假", "假", fix_dates(s))
        t = find_time(text, self.now, "span")
        if not explicit and not (t and (kids or (mine and re.search(r"孩子|接|去医院|看病|复查", s)))):
            return None
        if len(kids) > 1:
            return ask("请假", "一次请给一位学生请假，请分开发送，例如：请假 " + kids[0].name + " 明天全天 参加比赛",
                       学生=[k.name for k in kids])
        fields: dict[str, Any] = {}
        klass, refused = self._leave_student(s, kids, mine, fields)
        if refused is not None:
            return refused
        reason_text = text
        if t is not None:
            value, span_text, reason_text = t
            fields["时间段"] = _t(value)
            if re.fullmatch(r"\s*(?:今天|明天|后天|大后天|(?:下|这|本)?周[一二三四五六日])\s*", span_text) \
                    and not re.search(r"全天|一天|整天", s):
                return ask("请假", f"{span_text}是全天还是几点到几点？例如：{span_text}全天、{span_text}14:00-16:00",
                           dialog=_fill("请假", {**fields, "时间段": ""}, "时间段"), **fields)
        reason = _leave_reason(reason_text, kids)
        if reason:
            fields["事由"] = reason
        missing = _leave_ask_missing(fields)
        if missing is not None:
            return missing
        if re.search(r"不回学校|不返校|不回来|不回校|就不回", s):
            self._leave_until_evening(text, fields)
        # `周五下午杨宇轩要去比赛`, from a teacher: a sentence about the student (time first), not a request
        return _leave_plan(fields, klass, confirm_first=not explicit and self._about_a_student(s, kids))

    def _leave_student(self, s: str, kids: list[Any], mine: list[Any],
                       fields: dict[str, Any]) -> tuple[str | None, Plan | None]:
        """Who the leave is for (the student named, else a parent's only child) into `fields`, with 班级 when
        the class was said; returns the student's class, and a plan when a parent names another's child."""
        if kids:
            kid = kids[0]
            if mine and kid.id not in {k.id for k in mine} and not self.has("teacher", "head_teacher"):
                return None, run("请假", f"请假 {kid.name} 明天 {s}", 学生=kid.name)  # the service refuses it
            fields["学生"] = kid.name
            if re.search(r"[七八九]\s*[(（]?\s*[1-9一二三四五六七八九]\s*[)）]?\s*班", s):
                fields["班级"] = kid.klass
            return kid.klass, None
        if len(mine) == 1:
            fields["学生"] = mine[0].name
            return mine[0].klass, None
        return None, None

    def _about_a_student(self, s: str, kids: list[Any]) -> bool:
        """A teacher (not a parent) saying a time before the student's name talks about the student."""
        if not (self.has("teacher", "head_teacher") and not self.has("parent") and kids):
            return False
        first_time = _TIME_START.search(s)
        return first_time is not None and first_time.start() < lx.students_in(self.lex, s)[0][1]

    def _leave_until_evening(self, text: str, fields: dict[str, Any]) -> None:
        """Not coming back to school: marked, and a start time said (`下午三点接走`) runs the window to 18:00."""
        fields["返校"] = False
        at = find_time(text, self.now, "moment")
        if at is not None and isinstance(at[0], datetime) and at[0].hour < 18 and at[0].minute % 5 == 0 \
                and re.search(r"\d|点", at[1]):
            start = at[0]
            fields["时间段"] = f"{start:%Y-%m-%d} {start:%H:%M}-18:00"

    # --- visitor bookings ---
    def booking(self, s: str) -> Plan | None:
        if not self.has("teacher", "head_teacher", "admin"):
            return None
        phone = find_phone(s)
        if not (phone or re.search(r"预约|有人来|要来|来找我|来学校", s)):
            return None
        text = fix_dates(s)
        f: dict[str, Any] = {}
        if phone:
            f["手机"] = phone[0]
            text = _cut(text, *find_phone(text)[1:]) if find_phone(text) else text  # type: ignore[misc]
        t = find_time(text, self.now, "moment")
        if t is None and not phone:
            return None
        if t is not None:
            f["时间"] = _t(t[0])
            text = t[2]
        nm = re.search(r"(?:叫|联系人|名叫|妈妈|爸爸|母亲|父亲|家长)\s*([\u4e00-\u9fa5]{2,3}?)(?=$|[\s,，。\d的]|来|电话|手机)", text) \
            or re.search(rf"(?<=的)([{''.join(_SURNAMES)}][\u4e00-\u9fa5]{{1,2}}?)(?=来)", text)
        if not nm:
            nm = re.search(rf"(?:教练|老师|教研员|外教|经理|医生|工程师|师傅|同学|校友)([{''.join(_SURNAMES)}][\u4e00-\u9fa5]{{1,2}}?)"
                           r"(?=$|[\s,，。\d]|来|到)", text)
        if not nm:
            nm = re.search(r"(?<![A-Za-z])([A-Z][a-z]{1,15}(?: [A-Z][a-z]{1,15})?)(?![A-Za-z])", text)
        if not nm:
            nm = re.search(r"([\u4e00-\u9fa5](?:老师|师傅|先生|女士|经理|主任))", text)
        if not nm:
            nm = _name_token(text)
        if nm:
            f["姓名"] = nm.group(1)
            text = _cut(text, nm.start(1), nm.end(1))
        purpose = _clean(re.sub(r"预约|帮我|一个|访客|电话|手机号?|麻烦门卫放一下|麻烦门卫|叫$|联系人", " ", text))
        purpose = re.sub(r"^(?:有个|的|是)+", "", purpose).strip()
        if purpose:
            f["事由"] = purpose
        missing = [k for k in ("姓名", "手机", "时间", "事由") if not f.get(k)]
        if missing:
            q = {"姓名": "来访人姓名", "手机": "来访人手机号", "时间": "到访时间（例如 明天15:00）", "事由": "来访事由"}[missing[0]]
            return ask("预约", f"好的，预约访客。请发送{q}。", dialog=_fill("预约", f, missing[0]), **f)
        return run("预约", f"预约 {f['姓名']} {f['手机']} {f['时间']} {f['事由']}", **f)

    # --- repairs ---
    def repair(self, s: str) -> Plan | None:
        explicit = re.search(r"报修|报个修|报休|报一下修|维修一下|修一下|来修|来看看|来看一下|看一下|检查一下|处理一下|让后勤", s)
        if not explicit and not has_fault(s) and FIXTURE.search(s) and FIXTURE.search(s).end() >= len(s.rstrip()) - 1 \
                and self.has(*STAFF_ROLES):  # type: ignore[union-attr]
            where = find_place(self.lex, s)
            if where is not None and where.complete and len(s) <= 20:
                return ask("报修", f"地点：{where.place}。{FIXTURE.search(s).group(0)}怎么了？请描述问题（例如 漏水、不出水）。",  # type: ignore[union-attr]
                           dialog=_fill("报修", {"地点": where.place}, "描述"), 地点=where.place)
        fault = has_fault(s)
        if not (explicit or fault):
            return None
        if not self.has(*STAFF_ROLES):
            return None
        text = re.sub(r"^(?:帮我|麻烦|请)?(?:报个修|报修|报休|报一下修)[\s,，:：]*", "", s)
        text = re.sub(r"^(?:哦不对|不对)", "", text)
        urgent = bool(URGENT.search(text))
        text = re.sub(r"(?:紧急|加急|特急)[!！]*|[!！]+|急{2,}|^急(?=[\s,，])|(?<![着焦心])急$|赶紧来人|赶快来人", " ", text).strip()
        mine = people.classes_headed_by(self.ctx.session, self.me.id) if self.has("head_teacher") else []
        where = find_place(self.lex, text, self.ctx.options.default_building or "教学楼",
                           mine[0].name if len(mine) == 1 else None)
        fields: dict[str, Any] = {}
        if urgent:
            fields["紧急"] = True
        if where is None:
            desc = _clean(text)
            if not fault and not explicit:
                return None
            if desc:
                fields["描述"] = desc
            return ask("报修", "请问在哪里？请发送报修地点，例如：教学楼301、宿舍楼305、食堂后厨。",
                       dialog=_fill("报修", fields, "地点"), **fields)
        before = _clean(text[:where.start])
        desc = _clean(" ".join(x for x in (where.rest, before if fault and not has_fault(where.rest) else "") if x))
        desc = re.sub(r"(?:麻烦了|谢谢|辛苦了|师傅有空来.*|能不能处理一下|今天能来看看吗|让后勤看一下|来看看|来看一下|看一下)$", "", desc).strip(" ,，")
        fields["地点"] = where.place
        if desc:
            fields["描述"] = desc
        if vague_leak(where.place, desc):
            return ask("报修", f"{where.place}几楼、哪一间（或哪个位置）？请发送完整地点，例如：{where.place}3楼、{where.place}305。",
                       dialog=_fill("报修", {**fields, "地点": "", "楼": where.place}, "地点"), **fields)
        if not where.complete:
            return ask("报修", f"「{where.place}」是哪栋楼？请发送完整地点，例如：教学楼{where.place}、宿舍楼{where.place}。",
                       dialog=_fill("报修", {**fields, "地点": ""}, "地点"), **fields)
        if not desc or not has_fault(desc) and not explicit and len(desc) < 4:
            return ask("报修", f"地点：{where.place}。请描述一下是什么问题（例如：灯不亮、水龙头漏水）。",
                       dialog=_fill("报修", fields, "描述"), **fields)
        cmd = repair_command(fields)
        if not explicit and not fault:
            return confirm("报修", cmd, f"报修吗？地点：{where.place}；问题：{desc}。", **fields)
        if re.search(r"明天|后天|下周|周[一二三四五六日]", s) and re.search(r"检查一下|看一下", s) and not fault:
            return confirm("报修", cmd, f"报修吗？地点：{where.place}；问题：{desc}。", **fields)
        return run("报修", cmd, **fields)


_LEAVE_NOISE = re.compile(
    r"请假|请个假|请.{1,3}天假|想|给孩子|帮孩子|孩子|帮他|帮她|麻烦.{0,3}批一下|批一下|老师|您好|你好|我是.{1,4}(?:爸爸|妈妈)|"
    r"清假|晚上就不回学校了|不回学校|就不回|不返校|左右|[七八九]\s*[(（]?\s*[1-9一二三四五六七八九]\s*[)）]?\s*班|想给|有个学生要|帮.{0,2}请个?假|早上说|"
    r"接.{0,2}回去|接她|接他|来接|点来接")


def _leave_reason(text: str, kids: list[Any]) -> str:
    """What is left of a 请假 sentence once its time, the students' names and the asking words are taken out."""
    for k in kids:
        text = text.replace(k.name, " ")
        if len(k.name) == 3:
            text = text.replace(k.name[1:], " ")
    reason = _clean(re.sub(r"\s+", " ", _LEAVE_NOISE.sub(" ", text)))
    return re.sub(r"^(?:要|的|去了|了)\s*", "", reason)


def _leave_ask_missing(fields: dict[str, Any]) -> Plan | None:
    """The question for the first of student, time and reason not yet said."""
    if "学生" not in fields:
        return ask("请假", "给哪位学生请假？请发送学生姓名（重名时加班级）。", dialog=_fill("请假", fields, "学生"), **fields)
    if "时间段" not in fields:
        return ask("请假", f"{fields['学生']}请假的时间段是？例如：明天全天、今天14:00-16:00、周五下午。",
                   dialog=_fill("请假", fields, "时间段"), **fields)
    if not fields.get("事由"):
        return ask("请假", "请假事由是什么？（例如：发烧、看病、家里有事）", dialog=_fill("请假", fields, "事由"), **fields)
    return None


def _leave_plan(fields: dict[str, Any], klass: str | None, *, confirm_first: bool) -> Plan:
    """The 请假 command, its reason cleared of the time it repeats; confirmed first when it may be a statement
    or when another time is left in the reason (the window is then not certain)."""
    reason = _clean(_RETURN_CLAUSE.sub(" ", str(fields["事由"])))  # 「十点以后送她回学校」: the window's end again
    if fields.get("返校") is False:
        reason = _clean(re.sub(r"(?:\d{1,2}|[一二两三四五六七八九十]{1,3})\s*点(?:半|钟)?", " ", reason))
    fields["事由"] = reason
    cmd = leave_command(fields, klass)
    if confirm_first or _TIME_LEFT.search(reason):
        return confirm("请假", cmd, f"给{fields['学生']}请假吗？时间：{fields['时间段']}；事由：{reason}。", **fields)
    return run("请假", cmd, **fields)


FAULT_HINT = r"坏|不亮|漏|堵"
_RETURN_CLAUSE = re.compile(r"[^\s,，。]*?(?:\d{1,2}|[一二两三四五六七八九十]{1,3})\s*点[^\s,，。]*?(?:送.{0,2}回|回来|回学校|回校|返校)[^\s,，。]*")
_TIME_LEFT = re.compile(r"\d{1,2}\s*[点:：]|[一二两三四五六七八九十]{1,3}点|\d{1,2}\s*(?:号|日)(?!\S*班)")
FIXTURE = re.compile(r"水管|水龙头|灯|门锁|门|窗户|窗|空调|暖气|投影仪|插座|开关|饮水机|热水器|开水器|马桶|水箱|电脑|网络|监控|白板|桌子|椅子")
_SURNAMES = frozenset("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
                      "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")


def _name_token(text: str) -> re.Match[str] | None:
    """A 2–3 character name standing alone between separators (`预约：孙晓东，1531…，周五 8:30，…`)."""
    for m in re.finditer(r"(?:^|(?<=[\s,，:：;；]))([\u4e00-\u9fa5]{2,3})(?=$|[\s,，;；])", text):
        core = m.group(1)
        if core[0] in _SURNAMES and not re.search(r"送|来|修|装|检|查|的|找|面试|接|拿|换|量|清|听|谈|预约|访客|电话|手机", core):
            return m
    return None


def _masked(key: str, value: Any) -> str:
    if key == "手机":
        return mask_phone(str(value))
    if key == "身份证":
        return mask_id(str(value))
    return str(value)


def _fill(intent: str, fields: dict[str, Any], need: str) -> dict[str, Any]:
    return {"intent": intent, "fields": {k: v for k, v in fields.items() if v not in ("", None)}, "need": need}


def vague_leak(place: str, desc: str) -> bool:
    """`报修 宿舍楼 漏水`: a whole building and a leak with nothing said about what leaks or where — ask which
    floor and room instead of sending a plumber to search the building (`报修 食堂 水管漏水` is clear enough)."""
    return bool(re.fullmatch(r"(?:教学楼|实验楼|行政楼|综合楼|宿舍楼|体育馆|食堂)", place.strip())
                and re.search(r"漏(?!电)|渗|滴水|积水|冒水|淹", desc) and not FIXTURE.search(desc)
                and not re.search(r"[1-9一二三四五六]\s*[楼层]|屋顶|楼顶|天台|厕所|卫生间|走廊|楼道|楼梯|大厅|房间|\d{3}", desc))


def repair_command(f: dict[str, Any]) -> str:
    return f"报修 {'紧急 ' if f.get('紧急') else ''}{str(f['地点']).replace(' ', '')} {f['描述']}"


def visitor_command(f: dict[str, Any]) -> str:
    parts = ["访客", str(f["姓名"]), str(f["手机"]), str(f["事由"]).replace("找", "见")]
    if f.get("被访人"):
        parts.append(f"找{f['被访人']}")
    for key in ("车牌", "身份证"):
        if f.get(key):
            parts.append(str(f[key]))
    if f.get("人数"):
        parts.append(f"{f['人数']}人")
    return " ".join(parts)


def leave_command(f: dict[str, Any], klass: str | None) -> str:
    reason = str(f["事由"])
    if f.get("返校") is False and "不返校" not in reason:
        reason += " 不返校"
    return f"请假 {klass + ' ' if klass else ''}{f['学生']} {f['时间段']} {reason}"


def when_ok(text: str, now: datetime) -> bool:
    try:
        split_time_prefix(text, now, "when")
    except TimeParseError:
        return False
    return True


_ = timedelta  # kept for callers computing windows
