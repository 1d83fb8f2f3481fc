"""The rules of visitors (访客, FK): gate check-in and check-out, teachers' bookings, the blacklist, and personal
data kept safe.

Privacy (PIPL): phone and ID numbers are stored three ways and never in clear — encrypted (Fernet, key derived
from SECRET_KEY by HKDF), as a keyed hash (HMAC-SHA256, another HKDF key; for booking linkage and blacklist
matching without decrypting), and masked (`138****1111`, for every list and message). Only an admin, through
`reveal_id_number` / `reveal_phone` (the console), sees a full number, and each view is logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage import outbox, people
from storage.errors import Forbidden, NotFound, UserError
from storage.kernel import Ref, fmt_time, mark_once
from storage.people import Actor, Person
from storage.visitor.models import IdRevealLog, VisitorBlacklist, VisitorBooking, VisitorEntry
from storage.visitor.parse import (
    BOOK_USAGE,
    VisitorLine,
    check_id_number,
    check_name,
    check_phone,
    mask_id,
    mask_phone,
    mask_text,
    normalise,
    normalise_phone,
)

__all__ = ["DAY_END", "KIND", "LONG_STAY_HOURS", "RETENTION_DAYS", "CheckIn", "blacklist_add", "blacklist_all",
           "blacklist_hits", "blacklist_remove", "blacklist_value", "book", "booking_line", "bookings_on",
           "check_in", "check_out", "day_end_list", "decrypt", "deny", "encrypt", "entries_on", "entry_by_name",
           "entry_line", "fk", "flag_long_stays", "get_entry", "hm", "is_long_stay", "keyed_hash", "linked_entry",
           "on_campus", "parse_day_end", "purge", "resolve_host", "reveal_id_number", "reveal_log", "reveal_phone"]

LONG_STAY_HOURS = 4.0
DAY_END = "18:00"
RETENTION_DAYS = 180
KIND = "visitor"


# --- keys, encryption, keyed hashes ----------------------------------------------------------------------


@lru_cache(maxsize=8)
def _derive(secret_key: str, purpose: bytes) -> bytes:
    if not secret_key:
        raise RuntimeError("SECRET_KEY is not set: visitor personal data cannot be protected")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"houqin-visitor-v1", info=purpose)
    return hkdf.derive(secret_key.encode())


def _fernet(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"encrypt phone and id numbers")))


def keyed_hash(secret_key: str, value: str) -> str:
    """Same value, same hash (so it can be matched), but useless without the key (phones are guessable)."""
    return hmac.new(_derive(secret_key, b"match phone and id numbers"), value.encode(), hashlib.sha256).hexdigest()


def encrypt(secret_key: str, value: str) -> str:
    return _fernet(secret_key).encrypt(value.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UserError("无法解密：SECRET_KEY 与加密时不同。") from None


# --- formatting shared by replies, pushes and jobs -------------------------------------------------------


def fk(entry: VisitorEntry) -> str:
    return Ref.of("FK", entry.id)


def hm(dt: datetime) -> str:
    return f"{dt:%H:%M}"


def is_long_stay(entry: VisitorEntry, now: datetime, hours: float = LONG_STAY_HOURS) -> bool:
    end = entry.checked_out_at or now
    return end - entry.checked_in_at > timedelta(hours=hours)


def entry_line(entry: VisitorEntry, now: datetime, hours: float = LONG_STAY_HOURS) -> str:
    """One visit on one line, masked: `FK7 张三 138****1111 2人 苏E12345 送货 找张伟 09:00入校 在校`."""
    parts = [fk(entry), entry.name, entry.phone_masked]
    if entry.party > 1:
        parts.append(f"{entry.party}人")
    if entry.plate:
        parts.append(entry.plate)
    parts.append(entry.purpose)
    if entry.host_name:
        parts.append(f"找{entry.host_name}")
    day = "" if entry.checked_in_at.date() == now.date() else f"{entry.checked_in_at.month}月{entry.checked_in_at.day}日"
    if entry.checked_out_at is None:
        parts.append(f"{day}{hm(entry.checked_in_at)}入校 在校")
    else:
        parts.append(f"{day}{hm(entry.checked_in_at)}–{hm(entry.checked_out_at)} 已离开")
    flags = []
    if is_long_stay(entry, now, hours):
        flags.append(f"⚠超{hours:g}小时")
    if entry.blacklisted:
        flags.append("⚠黑名单")
    if entry.host_denied_at:
        flags.append("⚠被访人不认识")
    return " ".join(parts + flags)


def booking_line(session: Session, booking: VisitorBooking) -> str:
    teacher = session.get(Person, booking.teacher_id)
    entry = linked_entry(session, booking)
    state = f"已到校 {fk(entry)}" if entry else "未到"
    who = teacher.name if teacher else "?"
    return f"{hm(booking.expected_at)} {booking.name} {booking.phone_masked} {booking.purpose}（{who}预约）{state}"


# --- hosts -----------------------------------------------------------------------------------------------


def _labels(session: Session, person: Person) -> list[str]:
    """What tells two people of the same name apart: their roles and the classes they head."""
    assert person.id is not None
    roles = people.roles_of(session, person.id)
    labels = [people.ROLES[r] for r in people.ROLES if r in roles]
    labels += [c.name for c in people.classes_headed_by(session, person.id)]
    return labels


def resolve_host(session: Session, name: str, hint: str | None) -> Person | None:
    """The person the visitor came to see; None when nobody of that name is in the system.

    Several people of that name: the hint (`找张伟(维修工)`: a role, a class they head, or the number from
    our list) picks one; otherwise the guard is asked to resend the line saying which.
    """
    found = people.find_people(session, name)
    if len(found) <= 1:
        return found[0] if found else None
    labels = [_labels(session, p) for p in found]
    if hint:
        if hint.isdigit() and 1 <= int(hint) <= len(found):
            return found[int(hint) - 1]
        role = people.ROLE_BY_CHINESE.get(hint) or (hint if hint in people.ROLES else None)
        wanted = people.ROLES[role] if role else hint
        chosen = [p for p, ls in zip(found, labels) if wanted in ls]
        if len(chosen) == 1:
            return chosen[0]
    lines = [f"被访人「{name}」有 {len(found)} 位，请写明是哪一位后重发整条登记："]
    for i, (_p, ls) in enumerate(zip(found, labels), start=1):
        others = [x for j, other in enumerate(labels) if j != i - 1 for x in other]
        unique = next((x for x in ls if x not in others), str(i))
        lines.append(f"{i}. {name}（{'、'.join(ls) or '无角色'}）→ 找{name}({unique})")
    raise UserError("\n".join(lines))


# --- check-in --------------------------------------------------------------------------------------------


@dataclass
class CheckIn:
    entry: VisitorEntry
    host: Person | None = None
    host_told: bool = False
    booking: VisitorBooking | None = None
    booking_teacher: Person | None = None
    blacklist: list[VisitorBlacklist] = field(default_factory=list)


def _day(now: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(now.date(), time())
    return start, start + timedelta(days=1)


def linked_entry(session: Session, booking: VisitorBooking) -> VisitorEntry | None:
    return session.exec(select(VisitorEntry).where(VisitorEntry.booking_id == booking.id)).first()


def _find_booking(session: Session, phone_hash: str, now: datetime) -> VisitorBooking | None:
    start, end = _day(now)
    rows = session.exec(
        select(VisitorBooking).where(
            VisitorBooking.phone_hash == phone_hash,
            col(VisitorBooking.expected_at) >= start,
            col(VisitorBooking.expected_at) < end,
        )
    ).all()
    free = [b for b in rows if linked_entry(session, b) is None]
    free.sort(key=lambda b: abs((b.expected_at - now).total_seconds()))
    return free[0] if free else None


def blacklist_hits(session: Session, hashes_: list[str | None]) -> list[VisitorBlacklist]:
    wanted = [h for h in hashes_ if h]
    if not wanted:
        return []
    return list(session.exec(select(VisitorBlacklist).where(col(VisitorBlacklist.value_hash).in_(wanted))).all())


def check_in(session: Session, guard: Actor, line: VisitorLine, *, now: datetime, secret_key: str) -> CheckIn:
    """Record a visitor at the gate; tell the host, link a booking, and raise the alarm for a blacklisted one."""
    host = resolve_host(session, line.host, line.host_hint) if line.host else None
    phone_hash = keyed_hash(secret_key, line.phone)
    id_hash = keyed_hash(secret_key, line.id_number) if line.id_number else None
    entry = VisitorEntry(
        name=line.name,
        phone_hash=phone_hash,
        phone_enc=encrypt(secret_key, line.phone),
        phone_masked=mask_phone(line.phone),
        id_hash=id_hash,
        id_enc=encrypt(secret_key, line.id_number) if line.id_number else None,
        id_masked=mask_id(line.id_number) if line.id_number else None,
        purpose=line.purpose,
        host_name=host.name if host else line.host,
        host_id=host.id if host else None,
        plate=line.plate,
        party=line.party,
        guard_id=guard.id,
        checked_in_at=now,
    )
    result = CheckIn(entry=entry, host=host)
    result.booking = _find_booking(session, phone_hash, now)
    if result.booking is not None:
        entry.booking_id = result.booking.id
        result.booking_teacher = session.get(Person, result.booking.teacher_id)
        if host is None and result.booking_teacher is not None:  # came for the teacher who booked
            result.host = host = result.booking_teacher
            entry.host_id, entry.host_name = host.id, host.name
    result.blacklist = blacklist_hits(session, [phone_hash, id_hash])
    entry.blacklisted = bool(result.blacklist)
    session.add(entry)
    session.flush()

    who = f"{entry.name}（{entry.phone_masked}）" + (f"{entry.party}人" if entry.party > 1 else "")
    teacher = result.booking_teacher
    if teacher is not None and teacher.openid:
        outbox.notify(session, [teacher.id], KIND,
                      f"您预约的访客 {who} 已到校，门卫于 {hm(now)} 登记为 {fk(entry)}，事由：{entry.purpose}。",
                      now=now)
    if host is not None and host.openid and (teacher is None or host.id != teacher.id):
        outbox.notify(session, [host.id], KIND,
                      f"有访客找您：{who}，事由：{entry.purpose}，{hm(now)} 已在门卫登记 {fk(entry)}。"
                      f"如不认识此访客，请回复「不认识 {fk(entry)}」。", now=now)
    result.host_told = host is not None and bool(host.openid)
    if result.blacklist:
        reasons = "；".join(b.reason for b in result.blacklist if b.reason) or "未注明"
        alert = (f"⚠ 黑名单访客到校：{fk(entry)} {who}，事由：{entry.purpose}，{hm(now)} 由门卫{guard.name}登记。"
                 f"黑名单原因：{reasons}。请立即关注。")
        outbox.notify(session, [p.id for p in people.people_with_role(session, "guard", "admin")], KIND, alert,
                      now=now)
    return result


def get_entry(session: Session, n: int) -> VisitorEntry:
    entry = session.get(VisitorEntry, n)
    if entry is None:
        raise NotFound(f"FK{n}")
    return entry


def entry_by_name(session: Session, name: str) -> VisitorEntry:
    """`离开 张三`: the one visitor of that name still on campus."""
    found = list(session.exec(
        select(VisitorEntry).where(VisitorEntry.name == name, col(VisitorEntry.checked_out_at).is_(None))
        .order_by(col(VisitorEntry.id))
    ).all())
    if not found:
        raise UserError(f"在校访客中没有「{name}」。请发送「离开 FK7」（编号见「在校访客」）。")
    if len(found) > 1:
        refs = "、".join(fk(e) for e in found)
        raise UserError(f"在校访客中有 {len(found)} 位「{name}」：{refs}。请用编号，例如：离开 {fk(found[0])}")
    return found[0]


def check_out(session: Session, guard: Actor, entry: VisitorEntry, *, now: datetime) -> VisitorEntry:
    if entry.checked_out_at is not None:
        raise UserError(f"{fk(entry)} {entry.name} 已于 {fmt_time(entry.checked_out_at)} 登记离开。")
    entry.checked_out_at = now
    entry.checked_out_by = guard.id
    session.add(entry)
    return entry


def deny(session: Session, host: Actor, n: int, *, now: datetime) -> VisitorEntry:
    """The host says `不认识 FK7`: the guards are alerted. Only the host may say so (others: 未找到)."""
    entry = session.get(VisitorEntry, n)
    if entry is None or entry.host_id != host.id:
        raise NotFound(f"FK{n}")
    if mark_once(session, entry, "host_denied_at", now):  # said twice: the guards are alerted once
        guards = [entry.guard_id] + [p.id for p in people.people_with_role(session, "guard")]
        state = "仍在校内" if entry.checked_out_at is None else f"已于 {hm(entry.checked_out_at)} 离开"
        outbox.notify(session, guards, KIND,
                      f"⚠ 被访人{host.name}表示不认识访客 {fk(entry)} {entry.name}（{entry.phone_masked}），"
                      f"事由：{entry.purpose}，{state}。请核实。", now=now)
    return entry


# --- bookings --------------------------------------------------------------------------------------------


def book(session: Session, teacher: Actor, name: str, phone: str, when: datetime, purpose: str, *,
         now: datetime, secret_key: str) -> VisitorBooking:
    name = check_name(normalise(name), BOOK_USAGE)
    phone = check_phone(normalise(phone), BOOK_USAGE)
    purpose = mask_text(normalise(purpose))[:200]
    if not purpose:
        raise UserError(f"缺少事由。{BOOK_USAGE}")
    if when.date() < now.date():
        raise UserError(f"预约时间 {fmt_time(when)} 已经过去，请写今天或以后的时间。")
    booking = VisitorBooking(
        name=name,
        phone_hash=keyed_hash(secret_key, phone),
        phone_enc=encrypt(secret_key, phone),
        phone_masked=mask_phone(phone),
        purpose=purpose,
        expected_at=when,
        teacher_id=teacher.id,
        created_at=now,
    )
    session.add(booking)
    session.flush()
    return booking


def bookings_on(session: Session, now: datetime, actor: Actor | None = None) -> list[VisitorBooking]:
    """Today's bookings; a teacher who is not guard, admin or leader sees only their own."""
    start, end = _day(now)
    stmt = select(VisitorBooking).where(col(VisitorBooking.expected_at) >= start, col(VisitorBooking.expected_at) < end)
    if actor is not None and not actor.has("guard", "admin", "leader"):
        stmt = stmt.where(VisitorBooking.teacher_id == actor.id)
    return list(session.exec(stmt.order_by(col(VisitorBooking.expected_at), col(VisitorBooking.id))).all())


# --- lists -----------------------------------------------------------------------------------------------


def on_campus(session: Session) -> list[VisitorEntry]:
    stmt = select(VisitorEntry).where(col(VisitorEntry.checked_out_at).is_(None)).order_by(col(VisitorEntry.id))
    return list(session.exec(stmt).all())


def entries_on(session: Session, now: datetime) -> list[VisitorEntry]:
    start, end = _day(now)
    stmt = select(VisitorEntry).where(col(VisitorEntry.checked_in_at) >= start, col(VisitorEntry.checked_in_at) < end)
    return list(session.exec(stmt.order_by(col(VisitorEntry.id))).all())


# --- jobs: end of day, long stays, purge -----------------------------------------------------------------


def parse_day_end(value: str | time | None) -> time:
    if isinstance(value, time):
        return value
    try:
        h, m = (value or DAY_END).replace("：", ":").split(":")
        return time(int(h), int(m))
    except ValueError:
        return time(18, 0)


def day_end_list(session: Session, now: datetime, *, day_end: str | time | None = None,
                 hours: float = LONG_STAY_HOURS) -> int:
    """At the end of the school day, list the visitors still in to the guards, once a day. Returns pushes queued."""
    if now.time() < parse_day_end(day_end):
        return 0
    still_in = on_campus(session)
    if not still_in:
        return 0
    text = f"下班提醒：截至 {hm(now)} 仍有 {len(still_in)} 批访客未登记离开：\n"
    text += "\n".join(entry_line(e, now, hours) for e in still_in)
    text += "\n离开时请发送「离开 FK编号」。"
    guards = [p.id for p in people.people_with_role(session, "guard")]
    return outbox.notify(session, guards, KIND, text, now=now, dedup=f"visitor-day-end:{now.date().isoformat()}")


def flag_long_stays(session: Session, now: datetime, *, hours: float = LONG_STAY_HOURS) -> int:
    """Tell the guards, once per visit, about a visitor in for longer than the limit. Returns visits flagged."""
    cutoff = now - timedelta(hours=hours)
    rows = session.exec(
        select(VisitorEntry).where(
            col(VisitorEntry.checked_out_at).is_(None),
            col(VisitorEntry.long_stay_notified_at).is_(None),
            col(VisitorEntry.checked_in_at) < cutoff,
        ).order_by(col(VisitorEntry.id))
    ).all()
    guards = [p.id for p in people.people_with_role(session, "guard")]
    flagged = 0
    for entry in rows:
        if not mark_once(session, entry, "long_stay_notified_at", now):
            continue
        flagged += 1
        outbox.notify(session, [entry.guard_id, *guards], KIND,
                      f"⚠ 访客在校已超过{hours:g}小时：{entry_line(entry, now, hours)}。离开时请发送「离开 {fk(entry)}」。",
                      now=now)
    return flagged


def purge(session: Session, now: datetime, *, retention_days: int = RETENTION_DAYS) -> tuple[int, int]:
    """Delete visits and bookings older than the retention period. Returns (visits, bookings) removed."""
    cutoff = now - timedelta(days=retention_days)
    old_bookings = select(VisitorBooking.id).where(col(VisitorBooking.expected_at) < cutoff)
    session.exec(  # type: ignore[call-overload]
        update(VisitorEntry).where(col(VisitorEntry.booking_id).in_(old_bookings)).values(booking_id=None)
    )
    visits = session.exec(delete(VisitorEntry).where(col(VisitorEntry.checked_in_at) < cutoff))  # type: ignore[call-overload]
    bookings = session.exec(delete(VisitorBooking).where(col(VisitorBooking.expected_at) < cutoff))  # type: ignore[call-overload]
    return int(visits.rowcount or 0), int(bookings.rowcount or 0)


# --- blacklist -------------------------------------------------------------------------------------------


def blacklist_value(raw: str) -> tuple[str, str]:
    """(kind, normalised value) of a phone or ID number typed on the CLI, or a clear error."""
    s = normalise(raw).upper().replace(" ", "")
    digits = normalise_phone(s)
    if len(digits) == 11 and digits.isdigit():
        return "phone", check_phone(digits)
    if len(s) in (15, 18):
        return "id", check_id_number(s)
    raise UserError("请写手机号（11位）或18位身份证号。")


def _masked(kind: str, value: str) -> str:
    return mask_phone(value) if kind == "phone" else mask_id(value)


def blacklist_add(session: Session, raw: str, reason: str, *, now: datetime, secret_key: str,
                  by: str = "") -> tuple[VisitorBlacklist, bool]:
    """Add (or update the reason of) a blacklist entry. Returns (entry, created)."""
    kind, value = blacklist_value(raw)
    h = keyed_hash(secret_key, value)
    row = session.exec(select(VisitorBlacklist).where(VisitorBlacklist.value_hash == h)).first()
    created = row is None
    if row is None:
        row = VisitorBlacklist(kind=kind, value_hash=h, value_masked=_masked(kind, value), created_at=now,
                               created_by=by[:50])
    if reason or created:
        row.reason = mask_text(normalise(reason))[:200]
    session.add(row)
    session.flush()
    return row, created


def blacklist_remove(session: Session, raw: str, *, secret_key: str) -> VisitorBlacklist:
    kind, value = blacklist_value(raw)
    row = session.exec(select(VisitorBlacklist).where(VisitorBlacklist.value_hash == keyed_hash(secret_key, value))).first()
    if row is None:
        raise UserError(f"{_masked(kind, value)} 不在黑名单中。")
    session.delete(row)
    return row


def blacklist_all(session: Session) -> list[VisitorBlacklist]:
    return list(session.exec(select(VisitorBlacklist).order_by(col(VisitorBlacklist.id))).all())


# --- the console: full numbers for admins, logged --------------------------------------------------------


def _reveal(session: Session, admin: Actor, entry_id: int, what: str, now: datetime, secret_key: str) -> str:
    if not admin.has("admin"):
        raise Forbidden("查看完整证件号和手机号", people.ROLES["admin"])
    entry = get_entry(session, entry_id)
    token = entry.id_enc if what == "id_number" else entry.phone_enc
    if not token:
        raise UserError(f"{fk(entry)} 未登记身份证号。")
    value = decrypt(secret_key, token)
    session.add(IdRevealLog(entry_id=entry_id, field_name=what, admin_id=admin.id, admin_name=admin.name,
                            revealed_at=now))
    return value


def reveal_id_number(session: Session, admin_actor: Actor, entry_id: int, now: datetime, *, secret_key: str) -> str:
    """The full ID number of visit FK<entry_id>, for an admin in the console; the view is logged."""
    return _reveal(session, admin_actor, entry_id, "id_number", now, secret_key)


def reveal_phone(session: Session, admin_actor: Actor, entry_id: int, now: datetime, *, secret_key: str) -> str:
    """The full phone number of visit FK<entry_id>, for an admin in the console; the view is logged."""
    return _reveal(session, admin_actor, entry_id, "phone", now, secret_key)


def reveal_log(session: Session, entry_id: int | None = None) -> list[IdRevealLog]:
    stmt = select(IdRevealLog)
    if entry_id is not None:
        stmt = stmt.where(IdRevealLog.entry_id == entry_id)
    return list(session.exec(stmt.order_by(col(IdRevealLog.id))).all())
