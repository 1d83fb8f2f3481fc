"""Console sign-in: a session in a cookie signed with SECRET_KEY, a CSRF token per session, login rate limits.

No server-side session table: the cookie carries (person id, a tag of the password hash, a random session
id), signed and time-limited by itsdangerous. Every request re-reads the person, so a new password, a lost
admin/leader role or a deactivated account ends the session at once; logging out blacklists the session id
in the KV store until the cookie would have expired anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.runtime import Runtime
from storage.console_users import authenticate, console_actor, fingerprint
from storage.people import Actor, Person

SESSION_COOKIE = "houqin_admin"
LOGIN_COOKIE = "houqin_login"  # the CSRF token of the login form, before there is a session
SESSION_MAX_AGE = 12 * 3600
LOGIN_FORM_MAX_AGE = 3600
COOKIE_PATH = "/admin"

# Failed logins: 5 per person name and address per 15 minutes, and 20 per address (name spraying).
FAIL_WINDOW = 15 * 60
FAILS_PER_NAME = 5
FAILS_PER_IP = 20


class ConsoleError(Exception):
    """Stops a console request with a page: handled by the console's route class (bot.console.routes)."""

    def __init__(self, status: int, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.location = location


@dataclass(frozen=True)
class ConsoleUser:
    actor: Actor
    session_id: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.actor.has("admin")

    @property
    def role_text(self) -> str:
        return "后勤管理员" if self.is_admin else "校领导（只读）"


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _serializer(rt: Runtime, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(rt.settings.secret_key, salt=salt)


def _csrf_for(rt: Runtime, session_id: str) -> str:
    key = hashlib.sha256(("houqin-console-csrf:" + rt.settings.secret_key).encode()).digest()
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- the session --------------------------------------------------------------------------------------------


def current_user(request: Request) -> ConsoleUser | None:
    cached: ConsoleUser | None | bool = getattr(request.state, "console_user", False)
    if not isinstance(cached, bool):
        return cached
    user = _load_user(request)
    request.state.console_user = user
    return user


def _load_user(request: Request) -> ConsoleUser | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    rt = runtime(request)
    try:
        data = _serializer(rt, "houqin-console-session").loads(raw, max_age=SESSION_MAX_AGE)
        person_id, tag, sid = int(data["p"]), str(data["t"]), str(data["s"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if rt.kv.get(f"console:logout:{sid}"):
        return None
    with rt.db.session() as s:
        actor = console_actor(s, person_id, tag)
    if actor is None:
        return None
    return ConsoleUser(actor, sid, _csrf_for(rt, sid))


def require_user(request: Request) -> ConsoleUser:
    """Signed in (admin or leader), else off to the login page."""
    user = current_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ConsoleError(303, "请先登录", location=f"{COOKIE_PATH}/login?next={quote(target)}")
    return user


def require_admin(request: Request, user: ConsoleUser) -> ConsoleUser:
    if not user.is_admin:
        raise ConsoleError(403, "无权限：校领导可以查看台账，修改仅限后勤管理员。")
    return user


def check_csrf(user: ConsoleUser, token: str | None) -> None:
    if not token or not hmac.compare_digest(token, user.csrf):
        raise ConsoleError(403, "表单已失效（安全校验未通过），请刷新页面后重试。")


def start_session(request: Request, response: Response, actor: Actor, person: Person) -> None:
    rt = runtime(request)
    sid = secrets.token_urlsafe(18)  # a new id at every login: no session fixation
    value = _serializer(rt, "houqin-console-session").dumps({"p": actor.id, "t": fingerprint(person.password_hash),
                                                              "s": sid})
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH)


def end_session(request: Request, response: Response, user: ConsoleUser | None) -> None:
    if user is not None:
        runtime(request).kv.set(f"console:logout:{user.session_id}", "1", ttl=SESSION_MAX_AGE)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


# --- the login form -----------------------------------------------------------------------------------------


def login_token(request: Request) -> tuple[str, str]:
    """(token for the form, signed cookie value): the login form's own CSRF check (double submit, signed)."""
    rt = runtime(request)
    raw = request.cookies.get(LOGIN_COOKIE)
    if raw:
        try:
            token = str(_serializer(rt, "houqin-console-login").loads(raw, max_age=LOGIN_FORM_MAX_AGE))
            return token, raw
        except BadSignature:
            pass
    token = secrets.token_urlsafe(18)
    return token, _serializer(rt, "houqin-console-login").dumps(token)


def set_login_cookie(request: Request, response: Response, cookie: str) -> None:
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_FORM_MAX_AGE, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=_secure(request))


def check_login_token(request: Request, token: str | None) -> bool:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw or not token:
        return False
    try:
        expected = str(_serializer(runtime(request), "houqin-console-login").loads(raw, max_age=LOGIN_FORM_MAX_AGE))
    except BadSignature:
        return False
    return hmac.compare_digest(expected, token)


def _fail_keys(request: Request, name: str) -> tuple[str, str]:
    ip = client_ip(request)
    who = hashlib.sha256(name.strip().encode()).hexdigest()[:16]
    return f"console:loginfail:{ip}:{who}", f"console:loginfail-ip:{ip}"


BLOCKED = "blocked"  # attempt_login's answer when the limit is reached


def attempt_login(request: Request, name: str, password: str) -> tuple[Actor, Person] | str | None:
    """Check a login: BLOCKED over the limit, None for a wrong name or password, else who logged in.

    The attempt is counted first with an atomic increment (Redis INCR), then evaluated only if the count is
    within the limit: concurrent guesses cannot all read "4 so far" and all be evaluated. Success clears the
    per-name count. Blocking I/O and a slow hash: call it
    from a worker thread."""
    rt = runtime(request)
    by_name, by_ip = _fail_keys(request, name)
    n = rt.kv.incr(by_name, ttl=FAIL_WINDOW)
    m = rt.kv.incr(by_ip, ttl=FAIL_WINDOW)
    if n > FAILS_PER_NAME or m > FAILS_PER_IP:
        return BLOCKED
    with rt.db.session() as s:
        actor = authenticate(s, name, password)
        person = s.get(Person, actor.id) if actor else None
    if actor is None or person is None:
        return None
    rt.kv.delete(by_name)  # the per-address count keeps the attempt: 20 in 15 minutes is ample for an office
    return actor, person
