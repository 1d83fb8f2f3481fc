"""The shared domain kernel: record numbers (`Ref`) and day parsing, used the same way by every domain.

Record numbers are the table ids with a two-letter prefix per kind: BX 报修, FK 访客, QJ 请假, TX 提醒, XC 巡查.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from storage.errors import UserError

__all__ = ["PREFIXES", "Ref", "parse_day"]

PREFIXES = {"BX": "报修", "FK": "访客", "QJ": "请假", "TX": "提醒", "XC": "巡查"}

_REF = re.compile(r"^([A-Za-z]{2})?(\d{1,9})$")
_DAY = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")


@dataclass(frozen=True)
class Ref:
    """A record number: `Ref("BX", 12)` is shown as BX12 and parsed from `BX12`, `bx12` or `12`."""

    prefix: str
    number: int

    def __str__(self) -> str:
        return f"{self.prefix}{self.number}"

    @classmethod
    def of(cls, prefix: str, number: int | None) -> str:
        """The shown form of a record's number (`Ref.of("BX", ticket.id)` → "BX12")."""
        return f"{prefix}{number}"

    @classmethod
    def parse(cls, text: str | None, prefix: str) -> Ref:
        """`BX12`, `bx12` or `12` → Ref("BX", 12) for prefix BX; anything else is a clear error."""
        if not text:
            raise UserError(f"请写上编号，例如 {prefix}12")
        m = _REF.match(text.strip())
        if not m or (m.group(1) and m.group(1).upper() != prefix):
            raise UserError(f"编号格式不对：{text}（应为 {prefix}12 或 12）")
        return cls(prefix, int(m.group(2)))

    @staticmethod
    def typed_prefix(text: str | None) -> str | None:
        """The prefix a user typed (`TX3` → TX), or None for a bare number or no number at all."""
        m = _REF.match(text.strip()) if text else None
        return m.group(1).upper() if m and m.group(1) else None

    @staticmethod
    def search(text: str, prefix: str) -> int | None:
        """The number in a search box's text (`BX12`, `bx 12`, `12`), or None if it is not a record number."""
        m = re.fullmatch(rf"(?i)\s*(?:{prefix})?\s*(\d{{1,9}})\s*", text)
        return int(m.group(1)) if m else None


def parse_day(text: str) -> date:
    """`2026-10-01`, `2026/10/1`, `2026.10.1`, `2026年10月1日` → a date; ValueError otherwise."""
    m = _DAY.match(text.strip())
    if not m:
        raise ValueError(text)
    return date(int(m[1]), int(m[2]), int(m[3]))
