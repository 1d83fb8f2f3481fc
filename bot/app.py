"""The ASGI app (`bot.app:app`): WeChat webhook, health check, admin console, chat simulator."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bot.config import Settings
from bot.runtime import Runtime
from storage.clock import Clock

log = logging.getLogger("houqin")


def start_background(rt: Runtime) -> None:
    """Outbox sender and scheduler, in this process unless configured off (SENDER/SCHEDULER)."""
    from bot.sender import start_sender
    from jobs.scheduler import start_scheduler

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
            start_background(rt)
        yield
        rt.close()

    app = FastAPI(title="校园后勤助手", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt

    from bot.webhook import routes as webhook_routes

    app.router.routes.extend(webhook_routes)
    from bot import console, simulator

    app.include_router(console.router)
    app.include_router(simulator.router)  # answers 404 unless HOUQIN_SIMULATOR=1 (houqin demo)

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
