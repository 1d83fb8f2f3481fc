"""What must never leave the building in full: secrets and phone/ID numbers (SPEC 4 and 8).

`scrub` removes secrets — the AppSecret, the WeChat token, SECRET_KEY, the EncodingAESKey (registered once at
start-up), and the values of `secret=`, `access_token=`, `signature=` … in URLs and query strings.
`mask_numbers` masks every phone- or ID-like sequence whatever its separators (`138-0000-1111`,
`139 0000 2222`, `+86 138…`, a spaced ID number). `redact` does both. One function each, used at every
boundary: stored errors, log records, console pages, exports, chat replies.
"""

from __future__ import annotations

import functools
import re
import threading

__all__ = ["mask_id", "mask_numbers", "mask_phone", "redact", "register_secrets", "scrub"]

_SECRET_PARAM = re.compile(
    r"(?i)\b(app_?secret|secret(?:_key)?|access_token|token|signature|msg_signature|password|passwd|encrypt|"
    r"aes_?key|encoding_?aes_?key)(\s*[=:]\s*|%3D|\"\s*:\s*\")([^&\s'\"<>,;)]+)"
)
_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
MIN_SECRET = 6  # shorter values would scrub ordinary words


def register_secrets(*values: str | None) -> None:
    """Remember the configured secrets' values, so `scrub` removes them wherever they appear."""
    global _known_pattern
    with _lock:
        for v in values:
            if v and len(v) >= MIN_SECRET:
                _known.add(v)
        if _known:
            _known_pattern = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def scrub(text: str) -> str:
    if not text:
        return text
    out = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    pattern = _known_pattern
    if pattern is not None:
        out = pattern.sub("***", out)
    return out


# --- phone and ID numbers ---------------------------------------------------------------------------------

_SEP = r"[\s\-－—–.·]{0,2}"  # what people put between digit groups: spaces, hyphens, dots
_ID_LIKE = re.compile(rf"(?<![\dA-Za-z])\d(?:{_SEP}\d){{16}}{_SEP}[\dXx](?![\dA-Za-z])|(?<![\dA-Za-z])\d(?:{_SEP}\d){{14}}(?![\dA-Za-z])")
_PHONE_LIKE = re.compile(rf"(?<![\dA-Za-z])(?:(?:\+|00)?86{_SEP})?1{_SEP}[3-9](?:{_SEP}\d){{9}}(?!\d)")
_LONG_DIGITS = re.compile(r"(?<!\d)\d{11,}[Xx]?")
# Each of the three needs at least 11 digits with at most two separators between neighbours: one quick scan
# for that lets text without such a run (most replies) through untouched.
_ELEVEN_DIGITS = re.compile(rf"\d(?:{_SEP}\d){{10}}")


def mask_phone(phone: str) -> str:
    """13812341111 → 138****1111."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_id(id_number: str) -> str:
    """320501199001011234 → 3205**********1234."""
    if len(id_number) < 9:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def _digits(s: str) -> str:
    return re.sub(r"[^\dXx]", "", s)


def _phone(m: re.Match[str]) -> str:
    d = _digits(m.group(0))
    return mask_phone(d[-11:])


def mask_numbers(text: str) -> str:
    """Every phone- or ID-like sequence in free text masked, whatever separates its digits."""
    if not text or _ELEVEN_DIGITS.search(text) is None:
        return text
    return _mask(text)


@functools.lru_cache(maxsize=512)
def _mask(text: str) -> str:
    """(Replies repeat — the help text carries example numbers — and the three patterns cost ~100 µs a reply.)"""
    text = _ID_LIKE.sub(lambda m: mask_id(_digits(m.group(0)).upper()), text)
    text = _PHONE_LIKE.sub(_phone, text)
    return _LONG_DIGITS.sub(lambda m: mask_phone(m.group(0)) if len(m.group(0)) == 11 else mask_id(m.group(0)),
                            text)


def redact(text: str) -> str:
    return mask_numbers(scrub(text))
