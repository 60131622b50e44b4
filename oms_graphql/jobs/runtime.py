"""Run the async domain from Dramatiq's worker threads.

Each worker thread keeps one event loop for its life, so its database engine
(bound to that loop) and connection pool are reused across jobs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.engine import get_database

T = TypeVar("T")
_local = threading.local()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop.run_until_complete(coroutine)


def in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on this thread's database."""

    async def _run() -> T:
        async with get_database().session() as session, session.begin():
            return await work(session)

    return run(_run())
