"""Rounds, scans and answers: a route's round on a day it runs (created once, whoever comes first), a scan of a
checkpoint inside a due round or as an extra check, `正常` / `异常` on the scan (a finding, and a repair ticket for the
checkpoint's place through storage.repair), and the jobs that remind the people responsible when a round opens and
report missed checkpoints when it ends — once each, under a row lock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage import outbox, repair
from storage.errors import NotFound, UserError
from storage.inspection.checkpoints import (
    all_routes,
    clean_field,
    responsible_ids,
    runs_on,
    stops,
    window_of,
)
from storage.inspection.models import (
    ABNORMAL,
    MAX_NOTE,
    NORMAL,
    Checkpoint,
    InspectionFinding,
    InspectionRound,
    InspectionRoute,
    InspectionVisit,
)
from storage.people import Actor, Person, people_with_role

__all__ = ["INSPECTORS", "KIND", "OPEN_VISIT", "Answer", "Progress", "ScanOutcome", "add_finding_photo",
           "close_ended_rounds", "due_routes", "ensure_round", "finding_for_ticket", "mark_normal", "my_due_rounds",
           "my_progress", "open_visit", "progress", "remind_due_rounds", "report_problem", "scan"]

KIND = "inspection"  # outbox kind
OPEN_VISIT = timedelta(hours=2)  # `正常`/`异常` apply to the person's last scan within this time
INSPECTORS = frozenset({"admin", "leader", "guard", "worker"})  # a scan outside a round is an extra check


# --- rounds ---------------------------------------------------------------------------------------------


def ensure_round(session: Session, route: InspectionRoute, day: date) -> InspectionRound:
    """The route's round on `day`, created once whoever asks first (a scan, or the job)."""
    assert route.id is not None
    stmt = select(InspectionRound).where(InspectionRound.route_id == route.id, InspectionRound.day == day)
    found = session.exec(stmt).first()
    if found is not None:
        return found
    starts, ends = window_of(route, day)
    try:
        with session.begin_nested():
            rnd = InspectionRound(route_id=route.id, day=day, starts_at=starts, ends_at=ends)
            session.add(rnd)
            session.flush()
        return rnd
    except IntegrityError:  # another process created it a moment ago
        got = session.exec(stmt).first()
        assert got is not None
        return got


def _lock_round(session: Session, round_id: int) -> InspectionRound | None:
    return session.exec(select(InspectionRound).where(InspectionRound.id == round_id)
                        .with_for_update().execution_options(populate_existing=True)).first()


def due_routes(session: Session, now: datetime) -> list[InspectionRoute]:
    """Routes whose window is open now, on a day they run."""
    t = now.time()
    return [r for r in all_routes(session) if r.start <= t < r.end and runs_on(r, now.date())]


@dataclass
class Progress:
    route: InspectionRoute
    round: InspectionRound
    done: list[Checkpoint] = field(default_factory=list)
    missing: list[Checkpoint] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.done) + len(self.missing)


def progress(session: Session, rnd: InspectionRound) -> Progress:
    route = session.get(InspectionRoute, rnd.route_id)
    assert route is not None and route.id is not None
    visited = set(session.exec(select(InspectionVisit.checkpoint_id).where(InspectionVisit.round_id == rnd.id)).all())
    p = Progress(route, rnd)
    for cp in stops(session, route.id):
        (p.done if cp.id in visited else p.missing).append(cp)
    return p


def my_due_rounds(session: Session, actor: Actor, now: datetime) -> list[InspectionRound]:
    out = []
    for route in due_routes(session, now):
        if actor.id in responsible_ids(session, route):
            out.append(ensure_round(session, route, now.date()))
    return out


def my_progress(session: Session, actor: Actor, now: datetime) -> list[Progress]:
    """The rounds due now for this person, else today's rounds of theirs (done or ended)."""
    rounds = my_due_rounds(session, actor, now)
    if not rounds:
        mine = [r.id for r in all_routes(session) if actor.id in responsible_ids(session, r)]
        if mine:
            rounds = list(session.exec(select(InspectionRound).where(col(InspectionRound.route_id).in_(mine),
                                                                      InspectionRound.day == now.date())
                                       .order_by(col(InspectionRound.starts_at))).all())
    return [progress(session, r) for r in rounds]


# --- scanning and answering -----------------------------------------------------------------------------


@dataclass
class ScanOutcome:
    checkpoint: Checkpoint
    visit: InspectionVisit | None = None  # None: scan-to-report (a teacher with no round due)
    progress: Progress | None = None  # the round the visit counts for (None: an extra check)
    repeat: bool = False  # this checkpoint was already visited in the round


def scan(session: Session, actor: Actor, cp: Checkpoint, *, now: datetime, via: str = "scan") -> ScanOutcome:
    """A scan of `cp`: a visit in a round due for this person that includes it; else an extra check by
    inspecting staff; else (a teacher) nothing is recorded and the caller starts scan-to-report."""
    if not actor.is_staff:
        raise UserError("该二维码用于学校巡查和报修，仅限教职工使用。")
    for rnd in my_due_rounds(session, actor, now):
        assert rnd.id is not None
        if cp.id in {c.id for c in stops(session, rnd.route_id)}:
            repeat = session.exec(select(InspectionVisit.id).where(InspectionVisit.round_id == rnd.id,
                                                                   InspectionVisit.checkpoint_id == cp.id)).first()
            visit = _visit(session, actor, cp, rnd.id, now, via)
            return ScanOutcome(cp, visit, progress(session, rnd), repeat=repeat is not None)
    if actor.has(*INSPECTORS) or via == "text":
        return ScanOutcome(cp, _visit(session, actor, cp, None, now, via))
    return ScanOutcome(cp)


def _visit(session: Session, actor: Actor, cp: Checkpoint, round_id: int | None, now: datetime,
           via: str) -> InspectionVisit:
    assert cp.id is not None
    visit = InspectionVisit(checkpoint_id=cp.id, round_id=round_id, person_id=actor.id, at=now, via=via)
    session.add(visit)
    session.flush()
    return visit


def open_visit(session: Session, actor: Actor, now: datetime) -> InspectionVisit:
    """The person's last scan not yet answered with 正常/异常 (within OPEN_VISIT)."""
    visit = session.exec(select(InspectionVisit).where(InspectionVisit.person_id == actor.id,
                                                       col(InspectionVisit.at) >= now - OPEN_VISIT)
                         .order_by(col(InspectionVisit.id).desc()).with_for_update()).first()
    if visit is None or visit.result is not None:
        raise UserError("请先扫描点位上的二维码（或发送「巡查 点位编号」），再回复「正常」或「异常 情况说明」。")
    return visit


@dataclass
class Answer:
    visit: InspectionVisit
    checkpoint: Checkpoint
    progress: Progress | None
    finding: InspectionFinding | None = None
    ticket: repair.RepairTicket | None = None
    worker: repair.Worker | None = None


def _answer(session: Session, visit: InspectionVisit) -> tuple[Checkpoint, Progress | None]:
    cp = session.get(Checkpoint, visit.checkpoint_id)
    assert cp is not None
    rnd = session.get(InspectionRound, visit.round_id) if visit.round_id else None
    return cp, (progress(session, rnd) if rnd else None)


def mark_normal(session: Session, actor: Actor, *, now: datetime) -> Answer:
    visit = open_visit(session, actor, now)
    visit.result = NORMAL
    session.add(visit)
    cp, p = _answer(session, visit)
    return Answer(visit, cp, p)


def report_problem(session: Session, actor: Actor, note: str, *, now: datetime) -> Answer:
    """`异常 <说明>`: the finding, and a repair ticket for the checkpoint's place (category from the text)."""
    note = clean_field(note, MAX_NOTE, "异常说明")
    if not note:
        raise UserError("请写上异常情况，例如：异常 压力表指针在红区")
    visit = open_visit(session, actor, now)
    cp, _ = _answer(session, visit)
    visit.result, visit.note = ABNORMAL, note
    session.add(visit)
    session.flush()
    ticket, worker = repair.create_ticket(session, actor, cp.place[: repair.MAX_PLACE],
                                          f"{cp.name}：{note}（巡查 {visit.ref} 发现）"[: repair.MAX_DESCRIPTION],
                                          now=now)
    assert cp.id is not None and visit.id is not None
    finding = InspectionFinding(visit_id=visit.id, checkpoint_id=cp.id, description=note, ticket_id=ticket.id,
                                created_at=now)
    session.add(finding)
    session.flush()
    _, p = _answer(session, visit)
    return Answer(visit, cp, p, finding, ticket, worker)


def add_finding_photo(session: Session, finding_id: int, media_id: str | None, pic_url: str | None, *,
                      now: datetime) -> InspectionFinding:
    """A photo sent after `异常`: kept with the finding's repair ticket (the worker sees it there)."""
    finding = session.get(InspectionFinding, finding_id)
    if finding is None:
        raise NotFound("巡查发现")
    if finding.photos >= repair.MAX_PHOTOS:
        raise UserError(f"最多{repair.MAX_PHOTOS}张照片。")
    if finding.ticket_id is not None:
        session.add(repair.RepairPhoto(ticket_id=finding.ticket_id, media_id=media_id, pic_url=pic_url,
                                       created_at=now))
    finding.photos += 1
    session.add(finding)
    return finding


def finding_for_ticket(session: Session, ticket_id: int) -> InspectionFinding | None:
    """The other direction of the link: which inspection finding opened a repair ticket."""
    return session.exec(select(InspectionFinding).where(InspectionFinding.ticket_id == ticket_id)).first()


# --- the jobs: reminding and closing rounds --------------------------------------------------------------


def remind_due_rounds(session: Session, now: datetime) -> int:
    """Rounds whose window has opened: the people responsible are told the route and how many checkpoints —
    once per round (the reminded_at mark under a row lock, and unique outbox dedup keys)."""
    count = 0
    for route in due_routes(session, now):
        if route.created_at > datetime.combine(now.date(), route.end):
            continue
        rnd = ensure_round(session, route, now.date())
        assert rnd.id is not None
        locked = _lock_round(session, rnd.id)
        if locked is None or locked.reminded_at is not None:
            continue
        locked.reminded_at = now
        session.add(locked)
        assert route.id is not None
        cps = stops(session, route.id)
        text = (f"巡查提醒：现在开始「{route.name}」（{route.start:%H:%M}–{route.end:%H:%M}），共 {len(cps)} 个点位："
                + "、".join(cp.name for cp in cps[:10]) + ("等" if len(cps) > 10 else "")
                + "。到达点位后用微信扫描点位二维码，按提示回复「正常」或「异常 情况说明」；"
                  "发送「巡查进度」查看完成情况。")
        outbox.notify(session, responsible_ids(session, route), KIND, text, now=now, data={"round": rnd.id},
                      dedup=f"xc-round:{rnd.id}:remind")
        count += 1
    return count


def close_ended_rounds(session: Session, now: datetime) -> int:
    """Rounds whose window has ended: missed checkpoints go to the people responsible and the admins, once.

    Today's routes that ended with no round at all (nobody scanned, the job was down) are closed too."""
    for route in all_routes(session):
        starts, ends = window_of(route, now.date())
        if ends <= now and runs_on(route, now.date()) and route.created_at <= starts:
            ensure_round(session, route, now.date())
    ended = session.exec(select(InspectionRound.id).where(col(InspectionRound.closed_at).is_(None),
                                                          col(InspectionRound.ends_at) <= now)
                         .order_by(col(InspectionRound.id))).all()
    admins = [p.id for p in people_with_role(session, "admin")]
    count = 0
    for rid in ended:
        rnd = _lock_round(session, rid)
        if rnd is None or rnd.closed_at is not None:
            continue  # another process closed it while we waited for the lock
        p = progress(session, rnd)
        rnd.closed_at, rnd.missed = now, len(p.missing)
        session.add(rnd)
        if not p.missing:
            continue
        missing = "、".join(f"{cp.name}（{cp.code}）" for cp in p.missing)
        who = responsible_ids(session, p.route)
        names = "、".join(n for n in (session.get(Person, i).name for i in who) if n)  # type: ignore[union-attr]
        text = (f"漏检提醒：{rnd.day:%m月%d日}「{p.route.name}」（{p.route.start:%H:%M}–{p.route.end:%H:%M}）"
                f"已结束，{len(p.missing)} 个点位未巡查：{missing}。已完成 {len(p.done)}/{p.total}。")
        outbox.notify(session, who, KIND, text, now=now, data={"round": rid}, dedup=f"xc-round:{rid}:missed")
        outbox.notify(session, [a for a in admins if a not in who], KIND, text + f"负责人：{names or '未指定'}。",
                      now=now, data={"round": rid}, dedup=f"xc-round:{rid}:missed")
        count += 1
    return count
