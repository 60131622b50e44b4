"""What the OMS keeps of pushed deliveries (webhooks), which anyone can send.

Only a delivery for a known sender that passes its plugin's check is stored in
full and processed; one whose signed ``event_id`` was received already is a
replay and is refused, as is one whose signed timestamp is older than the
tolerance. A refused delivery is kept (REJECTED, its body cut to a size) so it
can be looked into, but only so many per sender an hour: past that it is only
logged, so a flood of forged requests cannot grow the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import InboundMessage, utcnow
from oms_graphql.domain.inbound import REJECTED, store_message

log = structlog.get_logger(__name__)


def staleness(signed_at: datetime | None, tolerance_seconds: float, now: datetime | None = None) -> str | None:
    """Why a signed timestamp is too far from now (None when fine, or when there is none)."""
    if signed_at is None or tolerance_seconds <= 0:
        return None
    age = ((now or utcnow()) - signed_at).total_seconds()
    if abs(age) <= tolerance_seconds:
        return None
    when = f"{int(age)} seconds old" if age > 0 else f"{int(-age)} seconds in the future"
    return f"the signed timestamp is {when}; the tolerance is {tolerance_seconds:g} seconds (a replay?)"


async def first_delivery(session: AsyncSession, source: str, kind: str, event_id: str) -> int | None:
    """The message that brought this event id already, if any."""
    return await session.scalar(
        select(InboundMessage.id).where(
            InboundMessage.source == source, InboundMessage.kind == kind, InboundMessage.event_id == event_id
        )
    )


async def store_authentic(
    session: AsyncSession, *, source: str, kind: str, body: bytes, headers: dict[str, Any], event_id: str | None
) -> InboundMessage | None:
    """Store an authentic delivery; None when its event id was received already (a replay)."""
    if event_id and await first_delivery(session, source, kind, event_id) is not None:
        return None
    try:
        async with session.begin_nested():
            return await store_message(
                session,
                source=source,
                kind=kind,
                body=body.decode("utf-8", errors="replace"),
                headers=headers,
                event_id=event_id,
            )
    except IntegrityError:
        return None  # the same event delivered twice at once: the other request stored it


async def keep_rejected(
    session: AsyncSession,
    *,
    source: str,
    kind: str,
    body: bytes,
    headers: dict[str, Any],
    reason: str,
    per_hour: int,
    max_bytes: int,
) -> InboundMessage | None:
    """Keep a refused delivery for inspection, cut to ``max_bytes``; None (only logged) when
    ``per_hour`` of this sender's were kept in the last hour already."""
    since = utcnow() - timedelta(hours=1)
    recent = await session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.source == source,
            InboundMessage.kind == kind,
            InboundMessage.status == REJECTED,
            InboundMessage.received_at >= since,
        )
    )
    if (recent or 0) >= per_hour:
        log.warning("refused delivery not kept: too many this hour", source=source, kind=kind, reason=reason)
        return None
    note = reason
    if len(body) > max_bytes:
        note = f"{reason} (body truncated to {max_bytes} of {len(body)} bytes)"
    return await store_message(
        session,
        source=source,
        kind=kind,
        body=body[:max_bytes].decode("utf-8", errors="replace"),
        headers=headers,
        status=REJECTED,
        error=note,
    )
