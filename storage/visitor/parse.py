"""The `访客` line and the checks on what a guard types at the gate: name, mobile, ID number, plate, party size.

Pure functions, no database: the handler and the CLI share them, and property tests drive them directly.
Every refusal is a UserError that says which field is wrong and how to write it. Error messages never echo
a full phone or ID number (PIPL): at most a masked form.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from storage.errors import UserError
from storage.redact import mask_id, mask_numbers, mask_phone  # noqa: F401 - mask_phone re-exported to the visitor service


EXAMPLE = "访客 张三 13900001234 送货 找王老师 苏E12345 2人"
USAGE = f"格式：访客 <姓名> <手机> <事由>，可加 找<被访人>、车牌、18位身份证号、<人数>人。例如：{EXAMPLE}"
BOOK_USAGE = "格式：预约 <姓名> <手机> <时间> <事由>，例如：预约 张三 13900001234 明天9:00 送材料"

_SPLIT = re.compile(r"[\s,，、;；]+")
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_PHONEISH = re.compile(r"^\+?[\d\-]+$")  # what someone meant as a phone number, right or wrong
_NAME = re.compile(r"^[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z·•.\-]{0,19}$")
_ID18 = re.compile(r"^\d{17}[\dX]$")
_DIGITS = re.compile(r"^\d+X?$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_P = f"[{PROVINCES}]"
_A = "[A-HJ-NP-Z0-9]"  # plates never use I or O
_PLATE = re.compile(
    rf"^{_P}[A-Z](?:"
    rf"{_A}{{4}}[A-HJ-NP-Z0-9挂学警港澳领]"  # ordinary, 7 characters: 苏E12345, 苏A1234学
    rf"|[DF]{_A}\d{{4}}"  # small new-energy, 8 characters: 苏AD12345
    rf"|\d{{5}}[DF]"  # large new-energy, 8 characters: 苏A12345D
    r")$"
)
_COUNT = re.compile(r"^(\d{1,3}|[一二两三四五六七八九十]{1,3})[人位名]$")
_CN_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_HOST = re.compile(r"^找(.{2,})$")  # 找人 is a purpose, not a host called 人
_HINTED = re.compile(r"^([^()]+)\((.+)\)$")
MAX_PARTY = 99


@dataclass(frozen=True)
class VisitorLine:
    """One parsed `访客` line. Phone and ID are in clear here; they never leave memory unencrypted."""

    name: str
    phone: str
    purpose: str
    host: str | None = None  # 找<被访人>
    host_hint: str | None = None  # 找张伟(教师): which 张伟
    plate: str | None = None
    id_number: str | None = None
    party: int = 1


# --- masking ---------------------------------------------------------------------------------------------


def mask_text(text: str) -> str:
    """Mask any phone- or ID-like sequence in free text (事由, reasons), whatever its separators."""
    return mask_numbers(text)


# --- single fields ---------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def check_name(token: str | None, usage: str = USAGE) -> str:
    if not token or _PHONEISH.match(token):
        raise UserError(f"缺少访客姓名：姓名写在最前面。{usage}")
    if not _NAME.match(token):
        raise UserError(f"姓名「{mask_text(token)[:20]}」不对：请写访客的姓名（汉字或字母，最多20字）。{usage}")
    return token


def normalise_phone(token: str) -> str:
    s = token.replace("-", "")
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("86") and len(s) == 13:
        s = s[2:]
    return s


def check_phone(token: str | None, usage: str = USAGE) -> str:
    """A mainland mobile number; the reply says how to write it, never echoing what was typed."""
    if not token or not _PHONEISH.match(token):
        raise UserError(f"缺少手机号：请在姓名后写访客的手机号。{usage}")
    phone = normalise_phone(token)
    if not _PHONE.match(phone):
        raise UserError("手机号不对：须为大陆手机号，1开头、第二位为3-9，共11位数字，例如 13900001234。")
    return phone


def check_id_number(token: str) -> str:
    """An 18-digit resident ID (GB 11643): birth date and check character verified."""
    s = token.upper()
    if len(s) == 15 and s.isdigit():
        raise UserError("15位旧身份证号已停用，请登记18位身份证号（最后一位可为X）。")
    if not _ID18.match(s):
        raise UserError("身份证号不对：须为18位（前17位数字，最后一位数字或X）。")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        born = None
    if born is None or born.year < 1900:
        raise UserError(f"身份证号 {mask_id(s)} 中的出生日期不对，请核对后重发。")
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != s[17]:
        raise UserError(f"身份证号 {mask_id(s)} 校验位不对（可能抄错了一位），请核对后重发。")
    return s


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for 17 digits (for tests and demos)."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS)) % 11]


def normalise_plate(token: str) -> str:
    return token.upper().replace("·", "").replace("•", "").replace("-", "")


def is_plate(token: str) -> bool:
    return bool(_PLATE.match(normalise_plate(token)))


def _count(m: re.Match[str]) -> int:
    n = m.group(1)
    if n.isdigit():
        value = int(n)
    elif n == "十":
        value = 10
    elif n.startswith("十"):  # 十二
        value = 10 + _CN_NUM.get(n[1:], 100)
    elif n.endswith("十"):  # 二十
        value = _CN_NUM.get(n[:-1], 100) * 10
    elif "十" in n:  # 二十三
        tens, ones = n.split("十", 1)
        value = _CN_NUM.get(tens, 100) * 10 + _CN_NUM.get(ones, 100)
    elif len(n) == 1:
        value = _CN_NUM[n]
    else:
        value = 0
    if not 1 <= value <= MAX_PARTY:
        raise UserError(f"人数不对：请写 1–{MAX_PARTY} 之间的人数，例如 2人。")
    return value


def split_host(raw: str) -> tuple[str, str | None]:
    """张伟(教师) → (张伟, 教师)."""
    m = _HINTED.match(raw)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return raw.strip(), None


# --- the whole line --------------------------------------------------------------------------------------


def parse_visitor_line(text: str) -> VisitorLine:
    """`<姓名> <手机> <事由…>` with optional `找<被访人>`, plate, ID number and `<n>人` anywhere after the phone."""
    tokens = [t for t in _SPLIT.split(normalise(text)) if t]
    if not tokens:
        raise UserError(USAGE)
    name = check_name(tokens[0])
    phone = check_phone(tokens[1] if len(tokens) > 1 else None)
    host = host_hint = plate = id_number = None
    party: int | None = None
    purpose: list[str] = []
    for token in tokens[2:]:
        upper = token.upper()
        if (m := _HOST.match(token)) is not None:
            if host is not None:
                raise UserError("被访人只能写一位（找<姓名>）。")
            host, host_hint = split_host(m.group(1))
            if not host:
                raise UserError("请在「找」后写被访人的姓名，例如 找王老师。")
            host = mask_text(host)[:50]
        elif is_plate(token):
            if plate is not None:
                raise UserError("车牌只能写一个。")
            plate = normalise_plate(token)
        elif _DIGITS.match(upper) and len(upper) >= 15:
            if id_number is not None:
                raise UserError("身份证号只能写一个。")
            id_number = check_id_number(upper)
        elif (m := _COUNT.match(token)) is not None:
            if party is not None:
                raise UserError("人数只能写一次，例如 2人。")
            party = _count(m)
        else:
            purpose.append(token)
    if not purpose:
        raise UserError(f"缺少事由：请写明来访事由。{USAGE}")
    return VisitorLine(
        name=name,
        phone=phone,
        purpose=mask_text(" ".join(purpose))[:200],
        host=host,
        host_hint=host_hint,
        plate=plate,
        id_number=id_number,
        party=party or 1,
    )
