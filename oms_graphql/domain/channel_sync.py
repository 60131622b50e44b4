"""Pulling orders from a channel: windows, the cursor, leases and the poll schedule.

A pull walks the time since the channel's cursor in windows no longer than the
channel accepts (``oms_channel_max_window``), each ending at least the channel's
lag before now (``oms_channel_min_lag``), and each starting a safety margin
before the cursor, so an order stamped a moment late at the channel is still
seen (seen twice is harmless: ingestion is idempotent). The cursor moves to the
window's end only after every page of the window was stored and ingested.

Two workers never pull one channel at once: a pull first takes the channel's
lease with one conditional UPDATE. The scheduler claims each due poll the same
way, so with any number of workers each channel is polled once per interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Channel, InboundMessage, Lease, utcnow
from oms_graphql.domain.channels import DEFAULT_SYNC_BACK, channel_config
from oms_graphql.plugins.contract import ChannelConfig

SAFETY_MARGIN = timedelta(minutes=5)
PULL_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class PullWindow:
    channel_id: int
    channel: ChannelConfig
    updated_after: datetime
    updated_before: datetime
    catching_up: bool  # more windows follow before the channel is up to date


def window_for(
    channel: Channel, now: datetime, max_window: float | None, min_lag: float | None
) -> tuple[datetime, datetime] | None:
    start = channel.sync_cursor or channel.sync_from or (channel.created_at or now) - DEFAULT_SYNC_BACK
    # Two seconds under the limit: channels with whole-second times round the ends outwards.
    longest = timedelta(seconds=max(max_window - 2, 1)) if max_window else timedelta(days=7)
    # The margin is at most a tenth of the window, so every window still makes progress.
    margin = min(SAFETY_MARGIN, longest / 10)
    after = start - margin if channel.sync_cursor else start
    before = min(after + longest, now - timedelta(seconds=min_lag or 0))
    if before <= after:
        return None
    return after, before


async def begin_pull(
    session: AsyncSession, channel_id: int, max_window: float | None, min_lag: float | None
) -> PullWindow | None:
    """Take the channel's pull lease and choose the window; None when busy or nothing to pull."""
    now = utcnow()
    channel = await session.get(Channel, channel_id)
    if channel is None or not channel.active:
        return None
    taken = await session.execute(
        update(Channel)
        .where(Channel.id == channel_id, (Channel.pull_lease_until.is_(None)) | (Channel.pull_lease_until < now))
        .values(pull_lease_until=now + PULL_LEASE)
        .execution_options(synchronize_session=False)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None  # another worker is pulling this channel right now
    window = window_for(channel, now, max_window, min_lag)
    if window is None:
        channel.pull_lease_until = None
        return None
    after, before = window
    up_to_date = now - timedelta(seconds=min_lag or 0)
    return PullWindow(
        channel.id, channel_config(channel), after, before, catching_up=before < up_to_date - timedelta(seconds=1)
    )


async def extend_lease(session: AsyncSession, channel_id: int) -> None:
    await session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(pull_lease_until=utcnow() + PULL_LEASE)
        .execution_options(synchronize_session=False)
    )


async def finish_pull(session: AsyncSession, channel_id: int, window_end: datetime) -> None:
    channel = await session.get(Channel, channel_id, with_for_update=True)
    if channel is None:
        return
    if channel.sync_cursor is None or window_end > channel.sync_cursor:
        channel.sync_cursor = window_end
    channel.pull_lease_until = None
    channel.last_pulled_at = utcnow()
    channel.last_error = None
    channel.last_error_at = None


async def pull_failed(session: AsyncSession, channel_id: int, error: str) -> Channel | None:
    """Free the lease and keep the error for the operators (shown on the channel)."""
    channel = await session.get(Channel, channel_id)
    if channel is None:
        return None
    channel.pull_lease_until = None
    channel.last_error = error[:4000]
    channel.last_error_at = utcnow()
    return channel


async def claim_due_polls(session: AsyncSession, pulling_kinds: set[str]) -> list[int]:
    """Channels whose poll interval has passed, each claimed by exactly one caller."""
    now = utcnow()
    candidates = (
        await session.execute(
            select(Channel.id, Channel.last_polled_at, Channel.poll_interval_seconds).where(
                Channel.active.is_(True), Channel.kind.in_(pulling_kinds)
            )
        )
    ).all()
    claimed = []
    for channel_id, last_polled_at, interval in candidates:
        if last_polled_at is not None and last_polled_at > now - timedelta(seconds=interval):
            continue
        # Conditional on the value we read: of several schedulers, one wins the row.
        condition = (
            Channel.last_polled_at.is_(None) if last_polled_at is None else Channel.last_polled_at == last_polled_at
        )
        result = await session.execute(
            update(Channel)
            .where(Channel.id == channel_id, condition)
            .values(last_polled_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            claimed.append(channel_id)
    return claimed


async def take_lease(session: AsyncSession, name: str, holder: str, duration: timedelta) -> bool:
    """Take the named lease for ``duration`` once the last one expired: the work it guards then
    runs once per ``duration`` however many workers ask."""
    now = utcnow()
    result = await session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.expires_at < now)
        .values(holder=holder, expires_at=now + duration)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    if await session.get(Lease, name) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(Lease(name=name, holder=holder, expires_at=now + duration))
            await session.flush()
        return True
    except IntegrityError:
        return False


async def stuck_messages(session: AsyncSession, older_than: timedelta, limit: int = 500) -> list[int]:
    """RECEIVED messages whose job has been missing for ``older_than`` (a worker died, a job was
    lost), marked as queued again: the caller sends their ingest jobs."""
    now = utcnow()
    waiting_since = func.coalesce(InboundMessage.queued_at, InboundMessage.received_at)
    ids = list(
        (
            await session.scalars(
                select(InboundMessage.id)
                .where(
                    InboundMessage.status == "RECEIVED",
                    waiting_since < now - older_than,
                    InboundMessage.kind.in_(("ORDER", "WEBHOOK")),
                )
                .order_by(InboundMessage.id)
                .limit(limit)
            )
        ).all()
    )
    if ids:
        await session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_(ids))
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids
