"""Engines and sessions.

An async engine is bound to the event loop that created its connections
(asyncpg's pool is), so there is one ``Database`` per event loop: the web
server has one, each background worker thread has its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from oms_graphql.config import get_settings


def _configure_sqlite(engine: AsyncEngine, foreign_keys: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let pysqlite leave transaction control to us, so that "begin" below
        # can take the write lock up front: two writers then queue instead of
        # failing with "database is locked" when one upgrades a read lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url``. ``sqlite_foreign_keys=False`` is for migrations only (see env.py)."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, sqlite_foreign_keys)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip on every checkout; recycling bounds stale connections.
    kwargs.setdefault("pool_recycle", 1800)
    # asyncpg: every connection keeps its prepared statements (SQLAlchemy's cache, on by default
    # at 100 per connection); the app has a few hundred statement texts, so all of them stay prepared.
    kwargs.setdefault("connect_args", {"prepared_statement_cache_size": 500})
    return create_async_engine(url, **kwargs)


class Database:
    """An engine plus its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Database] = weakref.WeakKeyDictionary()


def get_database(url: str | None = None) -> Database:
    """The ``Database`` of the running event loop for ``url`` (default: settings)."""
    url = url or get_settings().database_url
    loop = asyncio.get_running_loop()
    database = _by_loop.get(loop)
    if database is None or database.url != url:
        database = Database(url)
        _by_loop[loop] = database
    return database
