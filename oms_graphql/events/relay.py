"""The outbox relay: publishes committed events and sends committed job requests.

Every commit that wrote outbox rows wakes the relay of its process at once; a
timer catches anything left behind by a crash. On PostgreSQL several relays
(one per process) share the work with ``FOR UPDATE SKIP LOCKED``. A row may be
sent twice if a process dies between sending and marking it, which is why
every job is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from oms_graphql.db.engine import Database
from oms_graphql.db.models import OutboxEntry, utcnow
from oms_graphql.events.outbox import OUTBOX_WRITTEN
from oms_graphql.events.pubsub import Publisher
from oms_graphql.redaction import redact

log = structlog.get_logger(__name__)

SendJob = Callable[[str, dict[str, Any]], None]
MAX_ATTEMPTS = 10

_wakers: set[Callable[[], None]] = set()
_wakers_lock = threading.Lock()


@event.listens_for(Session, "after_flush")
def _note_outbox_rows(session: Session, _context: Any) -> None:
    if any(isinstance(obj, OutboxEntry) for obj in session.new):
        session.info[OUTBOX_WRITTEN] = True


@event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    if session.info.pop(OUTBOX_WRITTEN, False):
        with _wakers_lock:
            wakers = list(_wakers)
        for wake in wakers:
            wake()


@event.listens_for(Session, "after_rollback")
def _forget_outbox_rows(session: Session) -> None:
    session.info.pop(OUTBOX_WRITTEN, None)


class Relay:
    def __init__(self, database_url: str, publisher: Publisher, send_job: SendJob, batch_size: int = 200):
        self.database_url = database_url
        self.publisher = publisher
        self.send_job = send_job
        self.batch_size = batch_size
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self._wake.set)

    async def drain(self, database: Database) -> int:
        """Send everything unpublished; return how many rows were sent."""
        sent = 0
        while True:
            async with database.session() as session, session.begin():
                query = (
                    select(OutboxEntry)
                    .where(OutboxEntry.published_at.is_(None), OutboxEntry.attempts < MAX_ATTEMPTS)
                    .order_by(OutboxEntry.id)
                    .limit(self.batch_size)
                )
                if database.dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                rows = (await session.scalars(query)).all()
                sent_ids = []
                for row in rows:
                    try:
                        if row.kind == "job":
                            self.send_job(row.topic, row.payload)
                        else:
                            self.publisher.publish(row.topic, row.payload)
                        sent_ids.append(row.id)
                    except Exception as error:  # one bad row must not block the others
                        row.attempts += 1
                        row.last_error = redact(repr(error))[:500]
                        log.error(
                            "outbox row not sent",
                            outbox_id=row.id,
                            topic=row.topic,
                            attempts=row.attempts,
                            error=row.last_error,
                        )
                if sent_ids:
                    await session.execute(
                        update(OutboxEntry).where(OutboxEntry.id.in_(sent_ids)).values(published_at=utcnow())
                    )
            sent += len(sent_ids)
            # A failure waits for the next round (about a second) instead of spinning.
            if len(rows) < self.batch_size or len(sent_ids) < len(rows):
                return sent

    async def run(self, interval: float = 1.0) -> None:
        """Relay forever in the running loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        with _wakers_lock:
            _wakers.add(self.wake)
        database = Database(self.database_url)
        try:
            while True:
                self._wake.clear()
                try:
                    await self.drain(database)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox relay failed; retrying", next_try_in_seconds=interval)
                    await asyncio.sleep(interval)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
        finally:
            with _wakers_lock:
                _wakers.discard(self.wake)
            await database.dispose()
