"""Shared fixtures. The backing services are chosen by environment:

TEST_DB=sqlite|postgres (PostgreSQL at TEST_PG_URL), TEST_KV=memory|redis (Redis at TEST_REDIS_URL).
A test that needs a service it cannot reach fails; nothing is skipped silently.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from bot.app import create_app
from bot.cli import common as cli_common
from bot.config import Settings
from bot.sandbox.fakewechat import FakeWeChat
from bot.runtime import Runtime
from storage.clock import FrozenClock
from storage.db import Database, all_tables
from storage.kv import MemoryKV, RedisKV, ResilientKV
from tests.support import Wx

PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"
TOKEN = "spamtest"
APP_SECRET = "test-secret"
START = datetime(2026, 12, 1, 9, 0)  # a Tuesday in term time


def backend() -> str:
    return os.environ.get("TEST_DB", "sqlite")


def kv_backend() -> str:
    return os.environ.get("TEST_KV", "memory")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend() == "postgres":
        return PG_URL
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    if not db.is_sqlite:
        with db.engine.begin() as conn:  # a clean schema for this run
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    db.migrate()
    yield db
    db.dispose()


def wipe(db: Database) -> None:
    from sqlalchemy import inspect

    present = set(inspect(db.engine).get_table_names())
    tables = [t for t in all_tables() if t in present]  # a model whose migration is not written yet is skipped
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for t in reversed(tables):
                conn.execute(text(f'DELETE FROM "{t}"'))
            has_seq = conn.execute(text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first()
            if has_seq:
                conn.execute(text("DELETE FROM sqlite_sequence"))
        else:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db(database: Database) -> Database:
    wipe(database)
    return database


@pytest.fixture
def kv():  # type: ignore[no-untyped-def]
    if kv_backend() == "redis":
        store = ResilientKV(RedisKV(REDIS_URL, prefix="houqin-test:"))
        store.primary.client.ping()  # fail loudly if Redis is not there
        store.flush()
        yield store
        store.flush()
    else:
        yield MemoryKV()


def commands_on(clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """`houqin` commands run in this test (CliRunner) build their own Runtime: give it `clock` too."""
    monkeypatch.setattr(cli_common, "Runtime", partial(Runtime, clock=clock))
    return clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    return commands_on(FrozenClock(START), monkeypatch)


@pytest.fixture(scope="session")
def fake_wechat_server() -> Iterator[FakeWeChat]:
    """The fake WeChat API (bot.sandbox.fakewechat) on loopback, one per test session."""
    fake = FakeWeChat(appid=APP_ID, secret=APP_SECRET).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_wechat(fake_wechat_server: FakeWeChat) -> FakeWeChat:
    """The fake WeChat API, fresh for this test: no calls recorded, no tokens, no faults."""
    fake_wechat_server.reset()
    return fake_wechat_server


@pytest.fixture
def settings(database_url: str, fake_wechat: FakeWeChat) -> Settings:
    return Settings(
        wechat_token=TOKEN,
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_aes_key=AES_KEY,
        wechat_require_safe_mode=False,  # most tests post plaintext; safe mode's default has its own tests
        wechat_api_base_url=fake_wechat.base_url,
        database_url=database_url,
        redis_url=REDIS_URL if kv_backend() == "redis" else None,
        secret_key="test-secret-key-0123456789",
        scheduler="off",
        sender="off",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def rt(settings: Settings, clock: FrozenClock, kv, db: Database) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    runtime = Runtime(settings, clock=clock, kv=kv, db=db)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime=rt, background=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def wx(client: TestClient, settings: Settings) -> Wx:
    return Wx(client, settings, mode="plain")


@pytest.fixture
def chat(wx: Wx, rt: Runtime):  # type: ignore[no-untyped-def]
    from tests.school import Chat

    return Chat(wx, rt)


@pytest.fixture
def tmpdir_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)
