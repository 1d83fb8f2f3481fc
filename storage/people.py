"""People, roles, classes, students, parents and invite-code binding."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, Unpack

from sqlalchemy import UniqueConstraint, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Field, Session, SQLModel, col, select

from storage import outbox
from storage.errors import NotFound, UserError
from storage.fastsql import Hot
from storage.kv import KV

ROLES: dict[str, str] = {
    "admin": "后勤管理员",
    "leader": "校领导",
    "teacher": "教师",
    "head_teacher": "班主任",
    "guard": "门卫",
    "worker": "维修工",
    "parent": "家长",
}
ROLE_BY_CHINESE = {v: k for k, v in ROLES.items()} | {"管理员": "admin", "领导": "leader", "老师": "teacher"}
STAFF = frozenset({"admin", "leader", "teacher", "head_teacher", "guard", "worker"})
# Whose custom menu a person with several roles sees: the first of these they hold.
MENU_ROLE_ORDER = ("admin", "leader", "guard", "worker", "head_teacher", "teacher", "parent")

INVITE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed on phones
INVITE_DAYS = 7
BIND_FAILURES_PER_HOUR = 5


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=50)
    openid: str | None = Field(default=None, unique=True, max_length=64)
    subscribed: bool = True
    categories: str = Field(default="", max_length=200)  # worker skills, comma separated: 电,水
    phone: str | None = Field(default=None, max_length=20)
    password_hash: str | None = Field(default=None, max_length=200)  # console login, admins and leaders
    active: bool = True
    created_at: datetime
    bound_at: datetime | None = None
    last_inbound_at: datetime | None = None  # opens WeChat's 48-hour customer-service window


class PersonRole(SQLModel, table=True):
    person_id: int = Field(foreign_key="person.id", primary_key=True)
    role: str = Field(primary_key=True, max_length=20)


class SchoolClass(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=50)
    head_teacher_id: int | None = Field(default=None, foreign_key="person.id")


class Student(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    student_no: str = Field(unique=True, max_length=30)
    name: str = Field(index=True, max_length=50)
    class_id: int = Field(foreign_key="schoolclass.id")


class ParentLink(SQLModel, table=True):
    parent_id: int = Field(foreign_key="person.id", primary_key=True)
    student_id: int = Field(foreign_key="student.id", primary_key=True)


class Invite(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("code"),)
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=12)
    person_id: int = Field(foreign_key="person.id")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked: bool = False


@dataclass(frozen=True)
class Actor:
    """Who sent a message: what handlers and services need to know about a person."""

    id: int
    name: str
    openid: str | None
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF)


def parse_role(value: str) -> str:
    v = value.strip()
    if v in ROLES:
        return v
    if v in ROLE_BY_CHINESE:
        return ROLE_BY_CHINESE[v]
    raise UserError(f"未知角色：{value}（可用：{'、'.join(f'{k}/{c}' for k, c in ROLES.items())}）")


def role_names(roles: set[str] | frozenset[str]) -> str:
    return "、".join(ROLES[r] for r in ROLES if r in roles) or "无"


def roles_of(session: Session, person_id: int) -> frozenset[str]:
    rows = session.exec(select(PersonRole.role).where(PersonRole.person_id == person_id)).all()
    return frozenset(rows)


def actor_for(session: Session, person: Person) -> Actor:
    assert person.id is not None
    return Actor(person.id, person.name, person.openid, roles_of(session, person.id))


def actor_by_openid(session: Session, openid: str) -> Actor | None:
    person = session.exec(select(Person).where(Person.openid == openid, Person.active == True)).first()
    return actor_for(session, person) if person else None


def get_class(session: Session, name: str, create: bool = False) -> SchoolClass | None:
    klass = session.exec(select(SchoolClass).where(SchoolClass.name == name)).first()
    if klass is None and create:
        klass = SchoolClass(name=name)
        session.add(klass)
        session.flush()
    return klass


class PersonDetails(TypedDict, total=False):
    """What a new person may have besides a name and roles (a class makes a head teacher)."""

    class_name: str | None
    student_nos: list[str] | None
    categories: list[str] | None


def create_person(
    session: Session,
    name: str,
    roles: list[str],
    *,
    now: datetime,
    class_name: str | None = None,
    student_nos: list[str] | None = None,
    categories: list[str] | None = None,
) -> Person:
    name = name.strip()
    if not name:
        raise UserError("姓名不能为空")
    keys = sorted({parse_role(r) for r in roles})
    if not keys:
        raise UserError("至少需要一个角色")
    if class_name and "head_teacher" not in keys:
        keys.append("head_teacher")
    if "head_teacher" in keys and "teacher" not in keys:
        keys.append("teacher")
    if "parent" in keys and not student_nos:
        raise UserError("家长需要用 --student <学号> 关联学生")
    person = Person(name=name, created_at=now, categories=",".join(categories or []))
    session.add(person)
    session.flush()
    assert person.id is not None
    for role in keys:
        session.add(PersonRole(person_id=person.id, role=role))
    if class_name:
        klass = get_class(session, class_name, create=True)
        assert klass is not None
        klass.head_teacher_id = person.id
        session.add(klass)
    for no in student_nos or []:
        student = session.exec(select(Student).where(Student.student_no == no)).first()
        if student is None:
            raise UserError(f"学号 {no} 不在学生名册中，请先导入名册（houqin students import）")
        session.add(ParentLink(parent_id=person.id, student_id=student.id))  # type: ignore[arg-type]
    session.flush()
    return person


def new_invite(session: Session, person: Person, *, now: datetime) -> Invite:
    assert person.id is not None
    for _ in range(20):
        code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(6))
        if session.exec(select(Invite).where(Invite.code == code)).first() is None:
            break
    invite = Invite(code=code, person_id=person.id, created_at=now, expires_at=now + timedelta(days=INVITE_DAYS))
    session.add(invite)
    session.flush()
    return invite


def invite(session: Session, name: str, roles: list[str], *, now: datetime,
           **details: Unpack[PersonDetails]) -> tuple[Person, Invite]:
    """`create_person`, then the person's first invite code."""
    person = create_person(session, name, roles, now=now, **details)
    return person, new_invite(session, person, now=now)


def bind(session: Session, kv: KV, openid: str, code: str, *, now: datetime) -> Person:
    """Bind a WeChat OpenID to the person an invite code was made for (single use, 7 days, 5 tries/hour)."""
    code = code.strip().upper()
    fail_key = f"bindfail:{openid}"
    # Counted before it is evaluated, with an atomic increment (Redis INCR): concurrent tries cannot all read
    # "4 so far" and all be checked. A success clears the count.
    tries = kv.incr(fail_key, ttl=3600)
    if tries > BIND_FAILURES_PER_HOUR:
        raise UserError("邀请码错误次数过多，请一小时后再试，或联系后勤管理员。")
    already = session.exec(select(Person).where(Person.openid == openid)).first()
    if already is not None:
        raise UserError(f"此微信已绑定为「{already.name}」，无需重复绑定。如需更换，请联系后勤管理员。")
    found = session.exec(select(Invite).where(Invite.code == code)).first()
    problem = None
    if found is None or found.revoked:
        problem = "邀请码无效"
    elif found.used_at is not None:
        problem = "邀请码已被使用"
    elif found.expires_at < now:
        problem = "邀请码已过期，请联系后勤管理员重新生成"
    if problem:
        left = BIND_FAILURES_PER_HOUR - tries
        tail = f"（还可尝试 {left} 次）" if left > 0 else "（尝试次数已用完，请一小时后再试）"
        raise UserError(problem + tail)
    assert found is not None
    person = session.get(Person, found.person_id)
    if person is None or person.openid or not person.active:
        raise UserError("邀请码已被使用")
    found.used_at = now
    person.openid = openid
    person.bound_at = now
    person.subscribed = True
    person.last_inbound_at = now
    session.add(found)
    session.add(person)
    session.flush()
    kv.delete(fail_key)
    assert person.id is not None
    queue_menu_tag(session, person.id, now=now)
    return person


def queue_menu_tag(session: Session, person_id: int, *, now: datetime) -> None:
    """Queue the WeChat tag that gives a bound person their role's menu (after binding, after a role change)."""
    person = session.get(Person, person_id)
    if person is None or not person.openid:
        return  # tagged when they bind
    roles = roles_of(session, person_id)
    role = next((r for r in MENU_ROLE_ORDER if r in roles), None)
    outbox.enqueue(session, person_id, outbox.MENU_TAG, f"设置公众号菜单：{ROLES[role] if role else '默认菜单'}",
                   now=now, data={"menu_role": role})


def reset_menu(session: Session, openid: str | None, *, now: datetime) -> None:
    """Queue the default menu for a WeChat account that no longer acts as one of our people (unbound or
    deactivated): its role tag is taken away, so it stops seeing a role's menu. Addressed to the account itself
    (no person), so the sender delivers it although the person is gone from chat."""
    if openid:
        outbox.enqueue(session, None, outbox.MENU_TAG, "恢复公众号默认菜单", now=now, openid=openid,
                       data={"menu_role": None})


def unbind(session: Session, person_id: int, *, now: datetime | None = None) -> Person:
    """Revoke a binding: the WeChat account is forgotten (and its unused invites voided); the person stays.
    With `now`, the account's role menu is taken away too (`reset_menu`)."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"人员 {person_id}")
    if not person.openid:
        raise UserError(f"{person.name} 尚未绑定微信。")
    if now is not None:
        reset_menu(session, person.openid, now=now)
    person.openid = None
    person.bound_at = None
    session.add(person)
    for inv in session.exec(select(Invite).where(Invite.person_id == person_id, col(Invite.used_at).is_(None))).all():
        inv.revoked = True
        session.add(inv)
    session.flush()
    return person


def revoke_invite(session: Session, invite_id: int) -> Invite:
    inv = session.get(Invite, invite_id)
    if inv is None:
        raise NotFound(f"邀请码 {invite_id}")
    if inv.used_at is not None:
        raise UserError(f"邀请码 {inv.code} 已被使用，不能作废；如需解除，请使用「解除绑定」。")
    if inv.revoked:
        raise UserError(f"邀请码 {inv.code} 已作废。")
    inv.revoked = True
    session.add(inv)
    session.flush()
    return inv


def set_subscribed(session: Session, openid: str, subscribed: bool) -> Person | None:
    person = session.exec(select(Person).where(Person.openid == openid)).first()
    if person is not None and person.subscribed != subscribed:
        person.subscribed = subscribed
        session.add(person)
    return person


def touch_inbound(session: Session, person_id: int, now: datetime, last: datetime | None) -> bool:
    """Record that the person wrote to us (opens the 48 h window); skipped when recent, to spare writes.

    Returns whether it wrote."""
    if last is None or now - last > timedelta(minutes=5):
        session.execute(sa_update(Person).where(col(Person.id) == person_id).values(last_inbound_at=now))
        return True
    return False


def people_with_role(session: Session, *roles: str) -> list[Person]:
    stmt = (
        select(Person)
        .join(PersonRole, col(PersonRole.person_id) == col(Person.id))
        .where(col(PersonRole.role).in_(roles), Person.active == True)
        .distinct()
        .order_by(col(Person.id))
    )
    return list(session.exec(stmt).all())


def find_people(session: Session, name: str, role: str | None = None) -> list[Person]:
    stmt = select(Person).where(Person.name == name, Person.active == True)
    if role:
        stmt = stmt.join(PersonRole, col(PersonRole.person_id) == col(Person.id)).where(PersonRole.role == role)
    return list(session.exec(stmt.order_by(col(Person.id))).all())


def find_one(session: Session, name: str, *, role: str | None = None, what: str = "人员",
             missing: str = "找不到{what}「{name}」") -> Person:
    """The one active person called `name` (with `role`, if given), or a refusal a user can act on.

    `what` is the role word in the replies (人员, 维修工, 校领导 …); `missing` the reply when nobody has that
    name (`{name}` and `{what}` are filled in)."""
    name = name.strip()
    found = find_people(session, name, role)
    if not found:
        raise UserError(missing.format(name=name, what=what))
    if len(found) > 1:
        raise UserError(f"有 {len(found)} 位名为「{name}」的{what}，无法确定是哪一位，请在后台区分重名人员。")
    return found[0]


def name_of(session: Session, person_id: int | None) -> str:
    """A person's name for a reply or a list ("?" when there is nobody)."""
    p = session.get(Person, person_id) if person_id else None
    return p.name if p else "?"


def list_people(session: Session) -> list[tuple[Person, frozenset[str]]]:
    people = session.exec(select(Person).order_by(col(Person.id))).all()
    return [(p, roles_of(session, p.id)) for p in people]  # type: ignore[arg-type]


def classes_headed_by(session: Session, person_id: int) -> list[SchoolClass]:
    return list(session.exec(select(SchoolClass).where(SchoolClass.head_teacher_id == person_id)).all())


def children_of(session: Session, parent_id: int) -> list[Student]:
    stmt = select(Student).join(ParentLink, col(ParentLink.student_id) == col(Student.id)).where(
        ParentLink.parent_id == parent_id
    )
    return list(session.exec(stmt).all())


def import_students(session: Session, rows: list[list[str]]) -> tuple[int, list[str]]:
    """Import roster rows (学号,姓名,班级). Bad rows are reported by line and skipped; good rows are kept.

    `rows` excludes nothing: a first row that looks like a header is skipped. Returns (imported, errors).
    """
    imported, errors = 0, []
    seen: set[str] = set()
    for lineno, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if lineno == 1 and cells and cells[0] in ("学号", "student_no"):
            continue
        if not any(cells):
            continue
        if len(cells) < 3 or not all(cells[:3]):
            errors.append(f"第{lineno}行：需要 学号,姓名,班级 三列")
            continue
        no, name, class_name = cells[:3]
        if no in seen:
            errors.append(f"第{lineno}行：学号 {no} 重复")
            continue
        seen.add(no)
        klass = get_class(session, class_name, create=True)
        assert klass is not None and klass.id is not None
        existing = session.exec(select(Student).where(Student.student_no == no)).first()
        if existing:
            existing.name, existing.class_id = name, klass.id
            session.add(existing)
        else:
            session.add(Student(student_no=no, name=name, class_id=klass.id))
        imported += 1
    session.flush()
    return imported, errors


_SENDER_QUERY = Hot(
    sa_select(col(Person.id), col(Person.name), col(Person.active), col(Person.last_inbound_at), col(PersonRole.role))
    .outerjoin(PersonRole, col(PersonRole.person_id) == col(Person.id))
    .where(col(Person.openid) == bindparam("openid"))
)


def sender_by_openid(session: Session, openid: str) -> tuple[Actor | None, datetime | None]:
    """Who sent a message, with their roles and when they last wrote: one plain query (the hot path)."""
    rows = _SENDER_QUERY.run(session, {"openid": openid})  # (id, name, active, last_inbound_at, role) …
    if not rows or not rows[0][2]:
        return None, None
    pid, name, _active, last_inbound_at, _role = rows[0]
    return Actor(pid, name, openid, frozenset(r[4] for r in rows if r[4])), last_inbound_at


# --- revoking access (SPEC 1): the one place that deactivates people and changes roles ----------------------


def person_by_ref(session: Session, ref: int | str) -> Person:
    """A person by id (the console) or by a unique name (the CLI)."""
    if isinstance(ref, int):
        person = session.get(Person, ref)
        if person is None:
            raise UserError(f"未找到人员 {ref}")
        return person
    name = ref.strip()
    found = list(session.exec(select(Person).where(Person.name == name).order_by(col(Person.id))).all())
    active = [p for p in found if p.active] or found
    if not active:
        raise UserError(f"找不到人员「{name}」")
    if len(active) > 1:
        raise UserError(f"有 {len(active)} 位名为「{name}」的人员，无法确定是哪一位（请在后台按编号操作）")
    return active[0]


def deactivate(session: Session, ref: int | str, *, now: datetime | None = None) -> Person:
    """停用: from now on the person cannot act by chat, cannot log in, and every console session of theirs
    ends (both re-check `active` on every message and request). Records, roles and the binding stay, so the
    ledgers keep their names; unused invite codes are voided so nobody can bind as them. With `now`, their
    WeChat account's role menu is taken away too (`reset_menu`)."""
    person = person_by_ref(session, ref)
    if not person.active:
        raise UserError(f"{person.name} 已停用。")
    if now is not None:
        reset_menu(session, person.openid, now=now)
    person.active = False
    session.add(person)
    for inv in session.exec(select(Invite).where(Invite.person_id == person.id, col(Invite.used_at).is_(None))).all():
        inv.revoked = True
        session.add(inv)
    session.flush()
    return person


def set_roles(session: Session, ref: int | str, *, add: list[str] | None = None,
              remove: list[str] | None = None, now: datetime) -> tuple[Person, frozenset[str]]:
    """Add and remove roles (English or Chinese names). Takes effect at the person's next message or console
    request, which re-read the roles; their WeChat menu follows through the outbox (a new role tag). A person
    keeps at least one role: deactivate them instead."""
    person = person_by_ref(session, ref)
    assert person.id is not None
    adding = {parse_role(r) for r in add or [] if r.strip()}
    removing = {parse_role(r) for r in remove or [] if r.strip()}
    if adding & removing:
        raise UserError(f"同一角色不能既增加又移除：{role_names(adding & removing)}")
    current = set(roles_of(session, person.id))
    if "teacher" in removing and "head_teacher" in current - removing:
        removing.add("head_teacher")  # a head teacher is a teacher with a class
    if "head_teacher" in adding:
        adding.add("teacher")
    if "parent" in adding and not children_of(session, person.id):
        raise UserError("家长需要先关联学生（houqin invite … --student <学号>）")
    after = (current | adding) - removing
    if not after:
        raise UserError(f"{person.name} 至少要保留一个角色；如不再使用，请停用此人。")
    for role in removing & current:
        row = session.get(PersonRole, (person.id, role))
        if row is not None:
            session.delete(row)
    for role in adding - current:
        session.add(PersonRole(person_id=person.id, role=role))
    session.flush()
    if after != current:
        queue_menu_tag(session, person.id, now=now)
    return person, frozenset(after)
