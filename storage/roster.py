"""The roster: students and classes found by what people type (a name, a 学号, a class written like 七(3)班),
and each class's head teacher (`houqin classes`). The tables are in `storage.people`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from storage.errors import UserError
from storage.people import Person, PersonRole, SchoolClass, Student, find_one, get_class, name_of, queue_menu_tag


def class_named(session: Session, name: str) -> SchoolClass:
    klass = get_class(session, name.strip())
    if klass is None:
        raise UserError(f"未找到班级「{name}」，请检查班级名称（例如 七(3)班）。")
    return klass


def is_class_name(session: Session, token: str) -> bool:
    """Whether a token is meant as a class: a class of the roster, or anything written like one (…班)."""
    return get_class(session, token) is not None or token.endswith("班")


def is_student_token(session: Session, token: str) -> bool:
    stmt = select(Student.id).where((Student.name == token) | (Student.student_no == token))
    return session.exec(stmt).first() is not None


def class_name_prefix(session: Session, text: str) -> str | None:
    """The longest class of the roster that `text` starts with, ending at a 班 (`七(3)班李明` → 七(3)班)."""
    cuts = [text[: i + 1] for i, ch in enumerate(text[:30]) if ch == "班"]
    if not cuts:
        return None
    names = session.exec(select(SchoolClass.name).where(col(SchoolClass.name).in_(cuts))).all()
    return max(names, key=len) if names else None


def student_name_prefix(session: Session, text: str) -> str | None:
    """The longest student name of the roster that `text` starts with (`李明明天全天` → 李明)."""
    cuts = [text[:k] for k in range(1, min(len(text) - 1, 10) + 1)]
    if not cuts:
        return None
    names = session.exec(select(Student.name).where(col(Student.name).in_(cuts)).distinct()).all()
    return max(names, key=len) if names else None


def _class_names(session: Session, students: Iterable[Student]) -> str:
    return "、".join(class_name(session, s) for s in students)


def class_name(session: Session, student: Student) -> str:
    klass = session.get(SchoolClass, student.class_id)
    return klass.name if klass else "?"


def find_student(session: Session, name: str, klass: str | None = None,
                 within: list[Student] | None = None, example: str = "请假 七(3)班 李明 今天下午 看病") -> Student:
    """The one student called `name` (or with that 学号), in `klass` if given, among `within` if given.

    Several students of that name → ask for the class (or the 学号 when they share a class too).
    """
    if within is not None:
        found = [s for s in within if s.name == name or s.student_no == name]
    else:
        stmt = select(Student).where((Student.name == name) | (Student.student_no == name))
        found = list(session.exec(stmt.order_by(col(Student.id))).all())
    if klass is not None:
        k = class_named(session, klass)
        found = [s for s in found if s.class_id == k.id]
        if not found:
            raise UserError(f"{k.name}没有名为「{name}」的学生，请检查姓名和班级。")
    if not found:
        raise UserError(f"未找到学生「{name}」，请检查姓名（可写班级，例如 {example}）。")
    if len(found) > 1:
        if len({s.class_id for s in found}) == len(found):
            raise UserError(
                f"有{len(found)}名学生叫「{name}」（{_class_names(session, found)}），请写明班级，例如：{example}"
            )
        nos = "、".join(f"{s.student_no}（{class_name(session, s)}）" for s in found)
        raise UserError(f"有{len(found)}名学生叫「{name}」，请改用学号：{nos}")
    return found[0]


def set_head_teacher(session: Session, class_name_: str, teacher_name: str, *,
                     now: datetime) -> tuple[SchoolClass, Person, str | None]:
    """Make a person the head teacher of a class (the class is created if the roster lacks it). Returns the
    class, the person and the previous head teacher's name, if another."""
    class_name_ = class_name_.strip()
    if not class_name_:
        raise UserError("班级名称不能为空")
    person = find_one(session, teacher_name, missing="未找到{what}「{name}」，请先用 houqin invite 添加。")
    assert person.id is not None
    klass = get_class(session, class_name_, create=True)
    assert klass is not None
    previous = None
    if klass.head_teacher_id is not None and klass.head_teacher_id != person.id:
        previous = name_of(session, klass.head_teacher_id)
    klass.head_teacher_id = person.id
    session.add(klass)
    have = set(session.exec(select(PersonRole.role).where(PersonRole.person_id == person.id)).all())
    if not {"head_teacher", "teacher"} <= have:
        for role in ("head_teacher", "teacher"):
            if role not in have:
                session.add(PersonRole(person_id=person.id, role=role))
        session.flush()
        queue_menu_tag(session, person.id, now=now)  # a head teacher's menu from now on
    session.flush()
    return klass, person, previous


def list_classes(session: Session) -> list[tuple[SchoolClass, str | None, int]]:
    """(class, head teacher's name, number of students) for every class."""
    out = []
    for klass in session.exec(select(SchoolClass).order_by(col(SchoolClass.name))).all():
        count = len(session.exec(select(Student.id).where(Student.class_id == klass.id)).all())
        head = name_of(session, klass.head_teacher_id) if klass.head_teacher_id else None
        out.append((klass, head, count))
    return out
