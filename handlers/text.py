"""Input normalisation and argument helpers shared by every command (SPEC section 2)."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from storage.kernel import Ref

_SEPARATORS = re.compile(r"[\s,，]+")  # spaces (full-width ones become plain spaces), ， and ,
# Zero-width and invisible formatting characters (ZWSP/ZWNJ/ZWJ, LRM/RLM, word joiner, BOM, soft hyphen …):
# removed, so that `报\u200b修` is still 报修 (SPEC 2).
ZERO_WIDTH = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]")
# Punctuation of free text (descriptions, reasons, reminder contents) that NFKC would turn into ASCII: kept as
# typed in `rest` and `after()`. A `：` is kept too unless it sits inside a time (`9：00`) or right after the
# command word. Parentheses are not kept: class names (`七（3）班` = `七(3)班`) are looked up by them.
_KEEP = "，！？；："
_PLACEHOLDER = {ch: chr(0xE000 + i) for i, ch in enumerate(_KEEP)}  # private-use stand-ins NFKC leaves alone
_RESTORE = {v: k for k, v in _PLACEHOLDER.items()}
_TIME_COLON = re.compile(r"(?<=\d)：(?=\d)")


@functools.lru_cache(maxsize=1024)
def normalise(text: str) -> str:
    """Full-width digits, letters, spaces and punctuation → half-width; zero-width characters removed; trim
    space and a trailing 。. (Cached: a message's text is normalised at several steps of its routing.)"""
    s = unicodedata.normalize("NFKC", ZERO_WIDTH.sub("", text or ""))
    s = s.strip()
    while s.endswith("。") or s.endswith("."):
        s = s[:-1].rstrip()
    return s


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


def tokens(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    for m in _SEPARATORS.finditer(text):
        if m.start() > pos:
            out.append(Token(text[pos : m.start()], pos, m.start()))
        pos = m.end()
    if pos < len(text):
        out.append(Token(text[pos:], pos, len(text)))
    return out


@dataclass(frozen=True)
class Parsed:
    """A message split into its command word and arguments; `rest` keeps the original punctuation."""

    word: str
    rest: str
    args: list[str]

    def after(self, n: int) -> str:
        """The text after the first n arguments, as typed (commas and spaces inside kept)."""
        toks = tokens(self.rest)
        if n >= len(toks):
            return ""
        return self.rest[toks[n].start :].strip()


def split_command(text: str, words: set[str]) -> Parsed | None:
    """Find the command word: the first token, or the longest known word the message starts with.

    A `：`/`:` right after the command word is dropped (`报修：教学楼301 …`), colons inside times are kept.
    """
    s = keep_punctuation(text)
    if not s:
        return None
    toks = tokens(s)
    first = toks[0] if toks else Token(s, 0, len(s))
    word = None
    end = 0
    bare = normalise(first.text).rstrip(":")
    if bare in words:
        word, end = bare, first.end
    else:
        for w in sorted(words, key=len, reverse=True):
            if s.startswith(w):
                word, end = w, len(w)
                break
    if word is None:
        return None
    rest = s[end:].lstrip()
    rest = rest.removeprefix(":").removeprefix("：").strip()
    return Parsed(word, rest, [normalise(t.text) for t in tokens(rest)])


def keep_punctuation(text: str) -> str:
    """`normalise`, except that the free-text punctuation in _KEEP stays as typed."""
    s = _TIME_COLON.sub(":", text or "")
    s = "".join(_PLACEHOLDER.get(ch, ch) for ch in s)
    s = normalise(s)
    return "".join(_RESTORE.get(ch, ch) for ch in s)


def parse_ref(arg: str | None, prefix: str) -> int:
    """`BX12`, `bx12` or `12` → 12 for prefix BX; anything else is a clear error (storage.kernel.Ref)."""
    return Ref.parse(arg, prefix).number


def ref_prefix(arg: str | None) -> str | None:
    """The record prefix a user typed (`TX3` → TX), or None for a bare number."""
    return Ref.typed_prefix(arg)
