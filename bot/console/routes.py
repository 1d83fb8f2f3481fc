"""The admin console `/admin`: dashboard, ledgers (台账) with search and Excel export, people and invites.

Server-rendered Jinja2 pages in Chinese, one small stylesheet, no JavaScript framework: the console must work in
WeChat's built-in browser on a phone and with no internet. Admins read and change; leaders only read. Every
change goes through the same domain service as the chat command (assignment: `storage.repair.assign`,
reminders: `storage.reminder.create`, ID reveal: `storage.visitor.reveal_id_number`, which logs it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import DataError
from sqlmodel import Session

from bot.console import auth
from bot.console.auth import ConsoleError, ConsoleUser, require_admin, require_user, runtime
from bot.runtime import Runtime
from handlers.text import normalise, parse_ref
from handlers.reminder import swap_reply
from handlers.timeexpr import split_time_prefix
from storage import duty as duty_service
from storage import inspection, leave, ledger, listing, people, repair, visitor
from storage import outbox as ob
from storage import reminder as rem
from storage.db import DatabaseUnavailable
from storage.duty import PROVISIONAL_NOTE, is_provisional_row
from storage.errors import NotFound, UserError
from storage.kernel import fmt_day, fmt_duration
from storage.schoolcal import official_years
from storage.listing import Filters
from storage.redact import redact
from storage.people import ROLES

log = logging.getLogger("houqin.console")

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["ROLES"] = ROLES
templates.env.filters["dt"] = listing.fmt_dt
templates.env.filters["hm"] = lambda v: f"{v:%H:%M}" if v else ""
templates.env.filters["d"] = lambda v: f"{v:%Y-%m-%d}" if v else ""
templates.env.filters["redact"] = redact  # stored errors may predate the scrubbing at the sender


def _age(delta: timedelta) -> str:
    return fmt_duration(delta, coarse=True)


FLASH_COOKIE = "houqin_flash"

NAV: list[tuple[str, str, str]] = [
    ("dashboard", "/admin", "首页"),
    ("repairs", "/admin/repairs", "报修"),
    ("visitors", "/admin/visitors", "访客"),
    ("leave", "/admin/leave", "请假"),
    ("reminders", "/admin/reminders", "提醒"),
    ("duty", "/admin/duty", "值班"),
    ("people", "/admin/people", "人员"),
    ("blacklist", "/admin/blacklist", "黑名单"),
    ("outbox", "/admin/outbox", "消息"),
    ("inspections", "/admin/inspections", "巡查"),
    ("checkpoints", "/admin/checkpoints", "点位"),
    ("certificates", "/admin/certificates", "证照"),
]


class ConsoleRoute(APIRoute):
    """Turns the console's refusals into pages: login redirect, 403 page, a Chinese error, 503."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except ConsoleError as exc:
                if exc.location:
                    return RedirectResponse(exc.location, status_code=303)
                return error_page(request, exc.status, exc.message)
            except NotFound as exc:
                return error_page(request, 404, exc.message)
            except UserError as exc:
                return error_page(request, 400, exc.message)
            except DatabaseUnavailable:
                log.exception("console: database unavailable")
                return error_page(request, 503, "数据库暂时无法访问，请稍后再试。")
            except DataError:  # a value the database cannot hold (an id beyond its integer range): bad input
                log.warning("console: %s refused by the database as bad input", request.url.path)
                return error_page(request, 400, "参数不对。")
            # Pages carry personal data: never cached by the browser or a proxy, never framed.
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            return response

        return handler


router = APIRouter(prefix="/admin", route_class=ConsoleRoute, include_in_schema=False)

# A row id in a path: within the database's integer range (a larger one is a 422, not an overflow → 500)
RowId = Annotated[int, FastAPIPath(ge=1, le=2**31 - 1)]


# --- rendering helpers --------------------------------------------------------------------------------------


def _flash_serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(runtime(request).settings.secret_key, salt="houqin-console-flash")


def redirect(request: Request, url: str, message: str | None = None, error: bool = False) -> RedirectResponse:
    """After a change (POST), back to a page, with a one-time message (a signed cookie, not the URL)."""
    response = RedirectResponse(url, status_code=303)
    if message:
        value = _flash_serializer(request).dumps({"m": message, "e": error})
        response.set_cookie(FLASH_COOKIE, value, path=auth.COOKIE_PATH, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
    return response


def _take_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = _flash_serializer(request).loads(raw)
        return {"message": str(data["m"]), "error": bool(data["e"])}
    except (BadSignature, KeyError, TypeError):
        return None


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    rt = runtime(request)
    user = context.pop("user", None) or auth.current_user(request)
    flash = _take_flash(request)
    ctx = {
        "user": user,
        "csrf": user.csrf if user else "",
        "nav": NAV,
        "school": rt.settings.school_name,
        "now": rt.clock.now(),
        "flash": flash,
        **context,
    }
    response = templates.TemplateResponse(request, template, ctx, status_code=status_code)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path=auth.COOKIE_PATH)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        user = auth.current_user(request)
    except Exception:  # noqa: BLE001 - the error page itself must not fail (database down)
        user = None
    rt = runtime(request)
    ctx = {"user": user, "csrf": user.csrf if user else "", "nav": NAV, "school": rt.settings.school_name,
           "now": rt.clock.now(), "flash": None, "status": status, "message": message, "active": ""}
    return templates.TemplateResponse(request, "admin/error.html", ctx, status_code=status)


async def form_of(request: Request, user: ConsoleUser) -> dict[str, str]:
    """The POSTed form, after its CSRF token is checked."""
    form = await request.form()
    auth.check_csrf(user, str(form.get("csrf") or ""))
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


async def admin_form(request: Request) -> tuple[ConsoleUser, dict[str, str]]:
    """The admin making a change, and their POSTed form (CSRF checked): leaders and forged forms stop here."""
    user = require_admin(request, require_user(request))
    return user, await form_of(request, user)


def admin_action(request: Request, back: str, action: Callable[[Session, datetime], str], *,
                 wake: bool = False) -> RedirectResponse:
    """One change in one transaction: `action(session, now)` returns the Chinese reply; back to `back` with it.

    A UserError (bad input, wrong state) rolls the change back and comes back as the error message instead.
    `wake`: the change queued messages, so the sender is woken to send them now rather than at its next poll.
    """
    rt = runtime(request)
    try:
        with rt.db.session() as s:
            text = action(s, rt.clock.now())
    except UserError as exc:
        return redirect(request, back, exc.message, error=True)
    if wake:
        rt.wake_sender()
    return redirect(request, back, text)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _param(request: Request, name: str, default: str = "", limit: int = 100) -> str:
    """A query parameter as plain text: control characters (a NUL breaks PostgreSQL) dropped, length capped."""
    return _CONTROL.sub("", request.query_params.get(name, default) or "").strip()[:limit]


def _filters(request: Request, **defaults: str) -> Filters:
    return Filters(
        q=_param(request, "q"),
        start=listing.parse_date(_param(request, "from", limit=30)),
        end=listing.parse_date(_param(request, "to", limit=30)),
        state=_param(request, "state", defaults.get("state", ""), 30),
        kind=_param(request, "kind", defaults.get("kind", ""), 30),
        flag=_param(request, "flag", defaults.get("flag", ""), 30),
    )


def _page_no(request: Request) -> int:
    try:
        return max(1, min(10_000, int(request.query_params.get("page") or 1)))
    except ValueError:
        return 1


def _query_without_page(request: Request) -> str:
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])


def _ref(text: str, prefix: str) -> int:
    return parse_ref(text, prefix)


def _need(request: Request, table: str, title: str) -> None:
    with runtime(request).db.session() as s:
        if not listing.has_table(s, table):
            raise ConsoleError(404, f"{title}功能尚未启用（数据库未迁移到最新版本，请运行 houqin init）。")


def viewer(request: Request, table: str | None = None, title: str = "") -> tuple[ConsoleUser, Runtime]:
    """Who reads a page (else the login page), once its table is known to exist (else a 404 that says so)."""
    user = require_user(request)
    if table is not None:
        _need(request, table, title)
    return user, runtime(request)


@dataclass(frozen=True)
class LedgerView:
    """A ledger page's request: its reader, the filters from the query, the page asked for."""

    request: Request
    user: ConsoleUser
    rt: Runtime
    f: Any

    @property
    def page_no(self) -> int:
        return _page_no(self.request)

    def render(self, template: str, **context: Any) -> HTMLResponse:
        """The page with the filters, the query of its pager links and that of its export link."""
        ctx = {"f": self.f, "query": _query_without_page(self.request),
               "export_query": urlencode(self.request.query_params), **context}
        return render(self.request, template, user=self.user, **ctx)


def ledger_view(request: Request, table: str | None = None, title: str = "",
                filters: Callable[[Request], Any] | None = None) -> LedgerView:
    """`viewer`, plus the filters read by `filters` (by default the common search, date, state, kind and flag)."""
    user, rt = viewer(request, table, title)
    return LedgerView(request, user, rt, (filters or _filters)(request))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(data: bytes, filename: str, ascii_name: str | None = None) -> Response:
    """A workbook to download, named in Chinese (RFC 5987), with a plain ASCII name first when given."""
    plain = f'filename="{ascii_name}"; ' if ascii_name else ""
    return Response(data, media_type=XLSX,
                    headers={"Content-Disposition": f"attachment; {plain}filename*=UTF-8''{quote(filename)}"})


# --- static files -------------------------------------------------------------------------------------------


_STATIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,60}\.[a-z0-9]{1,8}")


@router.get("/static/{name}")
def static(name: str) -> Response:
    if not _STATIC_NAME.fullmatch(name):  # also keeps a NUL or a path out of the filesystem call
        return Response("未找到", status_code=404)
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file():
        return Response("未找到", status_code=404)
    response = FileResponse(path)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


# --- login --------------------------------------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


def _login_page(request: Request, status: int = 200, error: str = "", name: str = "") -> HTMLResponse:
    token, cookie = auth.login_token(request)
    response = render(request, "admin/login.html", status_code=status, user=None, login_csrf=token, error=error,
                      name=name, next=_safe_next(request.query_params.get("next")), active="")
    auth.set_login_cookie(request, response, cookie)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    if auth.current_user(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("name") or "").strip()[:50]
    password = str(form.get("password") or "")[:200]
    if not auth.check_login_token(request, str(form.get("csrf") or "")):
        return _login_page(request, 403, "页面已过期（安全校验未通过），请重新登录。", name)
    if not name or not password:
        return _login_page(request, 400, "请输入姓名和密码。", name)
    # The password hash (scrypt, tens of ms) runs in a worker thread: the event loop keeps answering WeChat.
    # The attempt is counted before it is evaluated, atomically, so concurrent guesses cannot exceed the limit.
    found = await run_in_threadpool(auth.attempt_login, request, name, password)
    if found is auth.BLOCKED:
        return _login_page(request, 429, "登录失败次数过多，请 15 分钟后再试。", name)
    if found is None:
        log.info("console login failed for %r from %s", name, auth.client_ip(request))
        return _login_page(request, 401, "姓名或密码错误（仅后勤管理员和校领导可以登录）。", name)
    assert isinstance(found, tuple)
    actor, person = found
    log.info("console login: %s (%s)", actor.name, auth.client_ip(request))
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
    auth.start_session(request, response, actor, person)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = require_user(request)
    await form_of(request, user)
    response = RedirectResponse("/admin/login", status_code=303)
    auth.end_session(request, response, user)
    return response


# --- dashboard ----------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    user, rt = viewer(request)
    with rt.db.session() as s:
        board = ledger.dashboard(s, rt.clock.now())
        insp = inspection.dashboard_panel(s, rt.clock.now())
    return render(request, "admin/dashboard.html", user=user, board=board, insp=insp, active="dashboard",
                  age=_age)


@router.get("/", include_in_schema=False)
def dashboard_slash() -> Response:
    return RedirectResponse("/admin", status_code=307)


# --- repairs ------------------------------------------------------------------------------------------------


@router.get("/repairs", response_class=HTMLResponse)
def repairs(request: Request) -> Response:
    v = ledger_view(request, "repairticket", "报修")
    with v.rt.db.session() as s:
        page = repair.repairs(s, v.f, v.page_no)
        workers = [w.name for w in repair.workers(s)]
    return v.render("admin/repairs.html", page=page, active="repairs", states=["未完成", *repair.STATES],
                    categories=list(repair.CATEGORIES), workers=workers, age=_age, open_states=repair.OPEN)


@router.get("/repairs/{ref}", response_class=HTMLResponse)
def repair_detail(request: Request, ref: str) -> Response:
    user, rt = viewer(request, "repairticket", "报修")
    n = _ref(ref, "BX")
    with rt.db.session() as s:
        info = repair.details(s, user.actor, n)
        photos = repair.photos_of(s, n)
        workers = [w.name for w in repair.workers(s)]
    return render(request, "admin/repair_detail.html", user=user, info=info, t=info.ticket, photos=photos,
                  workers=workers, active="repairs", open_states=repair.OPEN,
                  can_assign=info.ticket.state in repair.TRANSITIONS["assign"].sources)


@router.post("/repairs/{ref}/assign")
async def repair_assign(request: Request, ref: str) -> Response:
    user, form = await admin_form(request)
    n = _ref(ref, "BX")
    back = _safe_next(form.get("back")) if form.get("back") else f"/admin/repairs/BX{n}"

    def assign(s: Session, now: datetime) -> str:
        ticket, worker = repair.assign(s, user.actor, n, form.get("worker", ""), now=now)
        return f"已将 {ticket.ref} 派给{worker.name}，已通知维修工和报修人。"

    return admin_action(request, back, assign, wake=True)


@router.post("/repairs/{ref}/cancel")
async def repair_cancel(request: Request, ref: str) -> Response:
    user, form = await admin_form(request)
    n = _ref(ref, "BX")

    def cancel(s: Session, now: datetime) -> str:
        ticket = repair.cancel(s, user.actor, n, form.get("reason") or None, now=now)
        return f"已取消 {ticket.ref}。"

    return admin_action(request, f"/admin/repairs/BX{n}", cancel, wake=True)


# --- visitors -----------------------------------------------------------------------------------------------


@router.get("/visitors", response_class=HTMLResponse)
def visitors(request: Request) -> Response:
    v = ledger_view(request, "visitorentry", "访客")
    with v.rt.db.session() as s:
        page = visitor.visitors(s, v.f, v.page_no, secret_key=v.rt.settings.secret_key)
        reveals = visitor.recent_reveals(s, 20) if v.user.is_admin else []
    return v.render("admin/visitors.html", page=page, active="visitors", reveals=reveals)


@router.post("/visitors/{ref}/reveal", response_class=HTMLResponse)
async def visitor_reveal(request: Request, ref: str) -> Response:
    """An admin sees one full ID number (or phone); the visitor service logs who and when."""
    user, form = await admin_form(request)
    rt = runtime(request)
    n = _ref(ref, "FK")
    what = "phone" if form.get("field") == "phone" else "id_number"
    reveal = visitor.reveal_phone if what == "phone" else visitor.reveal_id_number
    try:
        with rt.db.session() as s:
            value = reveal(s, user.actor, n, rt.clock.now(), secret_key=rt.settings.secret_key)
            entry = visitor.get_entry(s, n)
    except UserError as exc:
        return redirect(request, "/admin/visitors", exc.message, error=True)
    log.info("console: %s revealed the %s of FK%s", user.actor.name, what, n)
    return render(request, "admin/reveal.html", user=user, entry=entry, value=value, active="visitors",
                  label="手机号" if what == "phone" else "身份证号")


@router.get("/blacklist", response_class=HTMLResponse)
def blacklist(request: Request) -> Response:
    v = ledger_view(request, "visitorblacklist", "黑名单")
    with v.rt.db.session() as s:
        rows = visitor.blacklist_rows(s, v.f)
    return v.render("admin/blacklist.html", rows=rows, active="blacklist")


@router.post("/blacklist")
async def blacklist_add(request: Request) -> Response:
    user, form = await admin_form(request)
    secret_key = runtime(request).settings.secret_key

    def add(s: Session, now: datetime) -> str:
        row, created = visitor.blacklist_add(s, form.get("number", ""), form.get("reason", ""), now=now,
                                             secret_key=secret_key, by=user.actor.name)
        return f"已{'加入' if created else '更新'}黑名单：{row.value_masked}"

    return admin_action(request, "/admin/blacklist", add)


# --- leave slips --------------------------------------------------------------------------------------------


@router.get("/leave", response_class=HTMLResponse)
def leave_list(request: Request) -> Response:
    v = ledger_view(request, "leaveslip", "请假")
    now = v.rt.clock.now()
    with v.rt.db.session() as s:
        page = leave.leave_slips(s, v.f, v.page_no)
        classes = leave.class_names(s)
    return v.render("admin/leave.html", page=page, active="leave", classes=classes,
                    states=[leave.PENDING, leave.APPROVED, leave.REJECTED, leave.OUT, leave.BACK],
                    status=lambda slip: leave.status_text(slip, now), span=leave.slip_span)


@router.get("/leave/{ref}", response_class=HTMLResponse)
def leave_detail(request: Request, ref: str) -> Response:
    user, rt = viewer(request, "leaveslip", "请假")
    n = _ref(ref, "QJ")
    now = rt.clock.now()
    with rt.db.session() as s:
        slip = leave.get_slip(s, n)
        events = leave.history(s, n)
        names = {e.actor_id: people.name_of(s, e.actor_id) for e in events if e.actor_id}
        rows = leave.leave_slips(s, Filters(q=f"QJ{n}"), 1).items
    row = next((r for r in rows if r.slip.id == n), None)
    return render(request, "admin/leave_detail.html", user=user, slip=slip, row=row, events=events, names=names,
                  status=leave.status_text(slip, now), span=leave.slip_span(slip), active="leave",
                  pending=slip.state == leave.PENDING and now < slip.ends_at)


@router.post("/leave/{ref}/decide")
async def leave_decide(request: Request, ref: str) -> Response:
    """An admin decides as the head teacher's deputy, through the same service as 批准/驳回 in chat."""
    user, form = await admin_form(request)
    n = _ref(ref, "QJ")
    approve = form.get("decision") == "approve"

    def decide(s: Session, now: datetime) -> str:
        slip = leave.decide(s, user.actor, n, approve, form.get("note") or None, now=now)
        return f"已{'批准' if approve else '驳回'} {leave.ref(slip)}，已通知申请人。"

    return admin_action(request, f"/admin/leave/QJ{n}", decide, wake=True)


# --- reminders ----------------------------------------------------------------------------------------------


@router.get("/reminders", response_class=HTMLResponse)
def reminders(request: Request) -> Response:
    v = ledger_view(request, "reminder", "提醒")
    with v.rt.db.session() as s:
        page = rem.reminders(s, v.f, v.page_no)
    return v.render("admin/reminders.html", page=page, active="reminders", states=rem.STATE_ZH,
                    sources={rem.SOURCE_CHAT: "聊天/后台", rem.SOURCE_BUILTIN: "内置", rem.SOURCE_DUTY: "值班"})


@router.post("/reminders")
async def reminder_create(request: Request) -> Response:
    """A reminder from the console: the time parsed as in chat, created by `storage.reminder.create`."""
    user, form = await admin_form(request)
    when_text = form.get("when", "").strip()
    labels = [x for x in re.split(r"[\s,，、@]+", form.get("targets", "")) if x]

    def create(s: Session, now: datetime) -> str:
        # The time is checked before the session is first used: a bad time touches no table.
        if not when_text:
            raise UserError("请填写提醒时间，例如：明天8:00、每周一 8:00、工作日 7:30")
        when, rest = split_time_prefix(when_text, now, "when")
        if rest:
            raise UserError(f"时间「{when_text}」无法识别，例如：明天8:00、每周一 8:00、工作日 7:30")
        specs = rem.parse_targets(s, user.actor, labels)
        r = rem.create(s, user.actor, when, form.get("text", ""), specs, now=now,  # type: ignore[arg-type]
                       needs_receipt=bool(form.get("receipt")),
                       target_label=" ".join(f"@{x}" for x in labels))
        total, bound = rem.reach(s, specs)
        return (f"已设置提醒 {r.ref}：{rem.describe_when(r, now)}，对象 {total} 人"
                + (f"（{total - bound} 人未绑定）" if bound < total else "") + "。")

    return admin_action(request, "/admin/reminders", create)


@router.get("/reminders/{ref}", response_class=HTMLResponse)
def reminder_detail(request: Request, ref: str) -> Response:
    user, rt = viewer(request, "reminder", "提醒")
    n = _ref(ref, "TX")
    with rt.db.session() as s:
        info = rem.reminder_details(s, n)
    return render(request, "admin/reminder_detail.html", user=user, info=info, r=info.row.reminder,
                  states=rem.STATE_ZH, active="reminders", active_state=rem.ACTIVE)


@router.post("/reminders/{ref}/cancel")
async def reminder_cancel(request: Request, ref: str) -> Response:
    user, _ = await admin_form(request)
    n = _ref(ref, "TX")

    def cancel(s: Session, now: datetime) -> str:
        return f"已取消提醒 {rem.cancel(s, user.actor, n, now=now).ref}。"

    return admin_action(request, f"/admin/reminders/TX{n}", cancel)


# --- duty rota ----------------------------------------------------------------------------------------------


@router.get("/duty", response_class=HTMLResponse)
def duty(request: Request) -> Response:
    user, rt = viewer(request, "dutyrota", "值班")
    today = rt.clock.now().date()
    f = _filters(request)
    if f.start is None and f.end is None and "from" not in request.query_params:
        f = Filters(q=f.q, start=today)  # by default the coming rota
    with rt.db.session() as s:
        rows = duty_service.duty_rota(s, f)
        leaders = [p.name for p in duty_service.leaders(s)]
    return render(request, "admin/duty.html", user=user, rows=rows, f=f, active="duty", today=today, leaders=leaders,
                  fmt_day=fmt_day, provisional=is_provisional_row, note=PROVISIONAL_NOTE,
                  any_provisional=any(is_provisional_row(r) for r, _ in rows),
                  official_through=official_years()[1], export_query=urlencode({"from": f.start or "", "to": f.end or "", "q": f.q}))


@router.post("/duty")
async def duty_change(request: Request) -> Response:
    """Put a leader on a day, through the same service as 换班 in chat (which tells both leaders)."""
    user, form = await admin_form(request)
    def swap(s: Session, now: datetime) -> str:
        day = listing.parse_date(form.get("day"))  # checked before the session is first used
        if day is None:
            raise UserError("请选择日期")
        return swap_reply(duty_service.swap(s, user.actor, day, now=now, leader_name=form.get("leader", "")))

    return admin_action(request, "/admin/duty", swap, wake=True)


# --- people and invites -------------------------------------------------------------------------------------


@router.get("/people", response_class=HTMLResponse)
def people_page(request: Request) -> Response:
    v = ledger_view(request)
    with v.rt.db.session() as s:
        rows = ledger.people_list(s, v.f, v.rt.clock.now(), viewer=v.user.actor)
    return v.render("admin/people.html", rows=rows, active="people")


@router.post("/people/invite")
async def people_invite(request: Request) -> Response:
    """A new person and their invite code, through `storage.people.invite` (as `houqin invite`)."""
    user = require_admin(request, require_user(request))
    form = await request.form()
    auth.check_csrf(user, str(form.get("csrf") or ""))
    roles = [str(r) for r in form.getlist("role") if str(r) in ROLES]

    def split(value: object) -> list[str]:
        return [x for x in re.split(r"[\s,，、]+", str(value or "")) if x]

    klass = normalise(str(form.get("klass") or "")).strip() or None

    def invite(s: Session, now: datetime) -> str:
        person, inv = people.invite(s, str(form.get("name") or ""), roles, now=now,
                                    class_name=klass, student_nos=split(form.get("students")) or None,
                                    categories=split(form.get("categories")) or None)
        return (f"已为 {person.name}（{people.role_names(people.roles_of(s, person.id))}）生成邀请码 {inv.code}，"  # type: ignore[arg-type]
                f"7天内有效。请对方在公众号发送：绑定 {inv.code}")

    return admin_action(request, "/admin/people", invite)


@router.post("/people/{person_id}/reinvite")
async def people_reinvite(request: Request, person_id: RowId) -> Response:
    await admin_form(request)
    def reinvite(s: Session, now: datetime) -> str:
        person = s.get(people.Person, person_id)
        if person is None:
            raise UserError("未找到该人员")
        if person.openid:
            raise UserError(f"{person.name} 已绑定微信；如需更换微信，请先解除绑定。")
        inv = people.new_invite(s, person, now=now)
        return f"已为 {person.name} 生成新邀请码 {inv.code}，7天内有效。请对方在公众号发送：绑定 {inv.code}"

    return admin_action(request, "/admin/people", reinvite)


@router.post("/people/{person_id}/unbind")
async def people_unbind(request: Request, person_id: RowId) -> Response:
    await admin_form(request)

    def unbind(s: Session, now: datetime) -> str:
        person = people.unbind(s, person_id, now=now)
        return f"已解除 {person.name} 的微信绑定；如需重新绑定，请生成新邀请码。"

    return admin_action(request, "/admin/people", unbind)


@router.post("/people/{person_id}/deactivate")
async def people_deactivate(request: Request, person_id: RowId) -> Response:
    """停用 through `storage.people.deactivate` (as `houqin people deactivate`): chat and console stop at once."""
    user, _ = await admin_form(request)

    def deactivate(s: Session, now: datetime) -> str:
        if person_id == user.actor.id:
            raise UserError("不能停用自己。")
        person = people.deactivate(s, person_id, now=now)
        log.info("console: %s deactivated person %s", user.actor.name, person_id)
        return f"已停用 {person.name}：不能再在公众号操作或登录后台，记录保留。"

    return admin_action(request, "/admin/people", deactivate)


@router.post("/people/{person_id}/roles")
async def people_roles(request: Request, person_id: RowId) -> Response:
    """Add or remove a role through `storage.people.set_roles` (as `houqin people set --add-role/--remove-role`)."""
    user, form = await admin_form(request)

    def change(s: Session, now: datetime) -> str:
        add, remove = [form.get("add", "")], [form.get("remove", "")]
        if person_id == user.actor.id and "admin" in [people.parse_role(r) for r in remove if r.strip()]:
            raise UserError("不能移除自己的后勤管理员角色。")
        person, roles = people.set_roles(s, person_id, add=add, remove=remove, now=now)
        return f"已更新 {person.name} 的角色：{people.role_names(roles)}。"

    return admin_action(request, "/admin/people", change)


@router.post("/invites/{invite_id}/revoke")
async def invite_revoke(request: Request, invite_id: RowId) -> Response:
    await admin_form(request)

    def revoke(s: Session, now: datetime) -> str:
        return f"已作废邀请码 {people.revoke_invite(s, invite_id).code}。"

    return admin_action(request, "/admin/people", revoke)


# --- outbox -------------------------------------------------------------------------------------------------


@router.get("/outbox", response_class=HTMLResponse)
def outbox_page(request: Request) -> Response:
    v = ledger_view(request)
    with v.rt.db.session() as s:
        page = ledger.outbox_rows(s, v.f, v.page_no)
    return v.render("admin/outbox.html", page=page, active="outbox", states=ob.STATES_ZH,
                    kinds=ledger.OUTBOX_KINDS, failed=ob.FAILED)


@router.post("/outbox/{msg_id}/retry")
async def outbox_retry(request: Request, msg_id: RowId) -> Response:
    _, form = await admin_form(request)

    def retry(s: Session, now: datetime) -> str:
        ob.retry(s, msg_id, now=now)
        return f"消息 {msg_id} 已重新排队发送。"

    return admin_action(request, _safe_next(form.get("back") or "/admin/outbox"), retry, wake=True)


# --- exports ------------------------------------------------------------------------------------------------


@router.get("/export", response_class=HTMLResponse)
def export_page(request: Request) -> Response:
    user, rt = viewer(request)
    with rt.db.session() as s:
        defaults = ledger.export_defaults(s, rt.clock.now().date())
    return render(request, "admin/export.html", user=user, ledgers=ledger.LEDGERS, active="export",
                  defaults=defaults)


@router.get("/export/{key}.xlsx")
def export(request: Request, key: str) -> Response:
    v = ledger_view(request)
    f, now = v.f, v.rt.clock.now()
    with v.rt.db.session() as s:
        sheet = ledger.export(s, key, f, now, secret_key=v.rt.settings.secret_key)
    span = ""
    if f.start or f.end:
        span = f"{f.start or ''}至{f.end or ''}"
    filename = f"{sheet.title}{'_' + span if span else ''}_{now:%Y%m%d%H%M}.xlsx"
    return xlsx_response(listing.to_xlsx(sheet, span), filename, ascii_name=f"{key}_{now:%Y%m%d%H%M}.xlsx")
