"""The ASGI app (`bot.app:app`): WeChat webhook, health check, admin console (and the demo's chat simulator)."""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bot import cpu
from bot.config import Settings, simulator_enabled
from bot.console.inspection import router as inspection_console_router
from bot.console.routes import router as console_router
from bot.runtime import Runtime
from bot.wechat.sender import start_sender
from bot.wechat.webhook import receive as webhook_receive
from bot.wechat.webhook import routes as webhook_routes
from jobs.scheduler import start_scheduler
from storage.clock import Clock

log = logging.getLogger("houqin")


def start_background(rt: Runtime) -> None:
    """The inbox's heartbeat and recovery loop; outbox sender and scheduler, in this process unless configured
    off (INBOX_RECOVERY/SENDER/SCHEDULER)."""
    cpu.pin(rt.settings.cpu_affinity)  # before the threads start: they inherit it
    rt.inbox.start(recovery=rt.settings.inbox_recovery == "on", interval=rt.settings.inbox_recovery_seconds)
    if rt.settings.sender == "on":
        rt.background.append(start_sender(rt))
    if rt.settings.scheduler == "on":
        rt.background.append(start_scheduler(rt))


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, runtime: Runtime | None = None,
               background: bool = True) -> FastAPI:
    rt = runtime or Runtime(settings or Settings(), clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background:
            tune_gc()
            start_background(rt)
        yield
        rt.close()

    app = App(title="校园后勤助手", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt
    app.router.routes.extend(webhook_routes)
    app.include_router(console_router)
    app.include_router(inspection_console_router)
    app.add_middleware(SimulatorOnDemand, fastapi_app=app)  # /simulator only while HOUQIN_SIMULATOR=1 (houqin demo)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for it on every page; the console and the simulator also link the SVG itself.
        return RedirectResponse("/admin/static/favicon.svg", status_code=301)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        ok = rt.db.ping()
        return JSONResponse({"database": ok, "kv_degraded": bool(getattr(rt.kv, "degraded", False))},
                            status_code=200 if ok else 503)

    return app


class App(FastAPI):
    """The app, with WeChat's `POST /wechat` answered straight from here: the webhook is a plain function of
    the request (no parameters to parse, no dependencies, its own error handling), and the middleware stack
    around the console's routes cost about a fifth of a `帮助`'s CPU (bench/cpu.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/wechat":
            await webhook_receive(self.state.runtime, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def tune_gc() -> None:
    """A server process: what was loaded at start-up (modules, the ORM's mappers, compiled statements) is
    frozen out of the collector's reach, and young collections run less often. The collector's passes over
    those objects were a quarter of a `报修`'s CPU (py-spy, bench/cpu.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 50)


class SimulatorOnDemand:
    """Adds the chat simulator's routes (bot/sandbox) on the first /simulator request while the simulator is
    switched on, so that a production process never imports the sandbox; until then /simulator is a 404."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.loaded = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (not self.loaded and scope["type"] == "http" and scope["path"].startswith("/simulator")
                and simulator_enabled(self.fastapi_app.state.runtime.settings)):
            self.fastapi_app.include_router(importlib.import_module("bot.sandbox.simulator").router)
            self.loaded = True
        await self.app(scope, receive, send)


def __getattr__(name: str) -> FastAPI:
    # `bot.app:app` is built lazily so that importing this module (tests, CLI) has no side effects.
    if name == "app":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every sub-second tick at INFO
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
