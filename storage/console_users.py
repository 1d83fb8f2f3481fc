"""Console accounts: admins and leaders log in to /admin with a password kept as an scrypt hash in Person.

Only these two roles may hold a console password; a teacher's account (or anyone else's) never logs in, even
if a hash were somehow stored for it, because `authenticate` checks the roles on every login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlmodel import Session

from storage.errors import UserError
from storage.people import Actor, Person, actor_for, find_one, find_people, role_names

CONSOLE_ROLES = frozenset({"admin", "leader"})
MIN_PASSWORD = 8
MAX_PASSWORD = 128

# scrypt cost: n=2**14, r=8, p=1 (16 MiB, ~50 ms) — the parameters travel in the stored string, so they can
# be raised later without invalidating existing hashes.
_N, _R, _P = 2**14, 8, 1
_SCHEME = "scrypt"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int | None = None, r: int = _R, p: int = _P) -> str:
    n = n or _N
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024, dklen=32)
    return f"{_SCHEME}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        # Spend the same time as a real check, so a wrong name and a wrong password look alike.
        hash_password(password)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=128 * 1024 * 1024, dklen=len(_unb64(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def fingerprint(stored: str | None) -> str:
    """A short tag of the stored hash: put in the session cookie, so a new password ends every old session."""
    return hashlib.sha256((stored or "").encode()).hexdigest()[:16]


def may_log_in(actor: Actor) -> bool:
    return bool(actor.roles & CONSOLE_ROLES)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"密码至少 {MIN_PASSWORD} 位")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"密码最多 {MAX_PASSWORD} 位")
    if password.strip() != password or not password.strip():
        raise UserError("密码首尾不能是空格")


def set_password(session: Session, name: str, password: str) -> Person:
    """`houqin admin password <姓名>`: the one admin or leader of that name gets a console password."""
    person = find_one(session, name)
    actor = actor_for(session, person)
    if not may_log_in(actor):
        raise UserError(f"「{person.name}」的角色是{role_names(actor.roles)}：只有后勤管理员和校领导可以登录后台")
    check_password_rules(password)
    person.password_hash = hash_password(password)
    session.add(person)
    session.flush()
    return person


def authenticate(session: Session, name: str, password: str) -> Actor | None:
    """The admin or leader with this name and password, or None (the same None for every kind of failure)."""
    found = find_people(session, name.strip()) if name.strip() else []
    candidates = [p for p in found if p.password_hash]
    if not candidates:
        verify_password(password, None)
        return None
    for person in candidates:
        if verify_password(password, person.password_hash):
            actor = actor_for(session, person)
            return actor if may_log_in(actor) else None
    return None


def console_actor(session: Session, person_id: int, tag: str) -> Actor | None:
    """The signed-in person, re-checked on every request: still active, still admin or leader, same password."""
    person = session.get(Person, person_id)
    if person is None or not person.active or not person.password_hash:
        return None
    if not hmac.compare_digest(fingerprint(person.password_hash), tag):
        return None
    actor = actor_for(session, person)
    return actor if may_log_in(actor) else None
