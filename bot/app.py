"""The ASGI app (`bot.app:app`): WeChat webhook, health check, admin console, chat simulator."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bot.config import Settings
from bot.runtime import Runtime
from storage.clock import Clock

log = logging.getLogger("houqin")


def _optional(module: str):  # type: ignore[no-untyped-def]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def start_background(rt: Runtime) -> None:
    """Outbox sender and scheduler, in this process unless configured off (SENDER/SCHEDULER)."""
    if rt.settings.sender == "on":
        sender = _optional("bot.sender")
        if sender is not None:
            rt.background.append(sender.start_sender(rt))
    if rt.settings.scheduler == "on":
        sched = _optional("jobs.scheduler")
        if sched is not None:
            rt.background.append(sched.start_scheduler(rt))


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, runtime: Runtime | None = None,
               background: bool = True) -> FastAPI:
    rt = runtime or Runtime(settings or Settings(), clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background:
            start_background(rt)
        yield
        rt.close()

    app = FastAPI(title="校园后勤助手", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt

    from bot.webhook import routes as webhook_routes

    app.router.routes.extend(webhook_routes)
    for name in ("bot.console", "bot.simulator"):  # optional web pages, each a module with `router`
        mod = _optional(name)
        if mod is not None:
            app.include_router(mod.router)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        ok = rt.db.ping()
        return JSONResponse({"database": ok, "kv_degraded": bool(getattr(rt.kv, "degraded", False))},
                            status_code=200 if ok else 503)

    return app


def __getattr__(name: str) -> FastAPI:
    # `bot.app:app` is built lazily so that importing this module (tests, CLI) has no side effects.
    if name == "app":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every sub-second tick at INFO
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
