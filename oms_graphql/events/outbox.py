"""Write events and job requests in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import OutboxEntry

# Set on a session whose transaction wrote outbox rows, so the relay is woken at commit.
OUTBOX_WRITTEN = "outbox_written"


def record_event(session: AsyncSession, topic: str, payload: dict[str, Any]) -> None:
    """Publish ``payload`` on ``topic`` to subscribers once the transaction commits."""
    session.add(OutboxEntry(kind="event", topic=topic, payload=payload))


def request_job(session: AsyncSession, actor: str, **kwargs: Any) -> None:
    """Send a job to ``actor`` with ``kwargs`` (ids, never objects) once the transaction commits."""
    session.add(OutboxEntry(kind="job", topic=actor, payload=kwargs))


def note_outbox_written(session: AsyncSession) -> None:
    """For rows inserted with plain SQL (not ``session.add``): wake the relay at commit."""
    session.sync_session.info[OUTBOX_WRITTEN] = True
