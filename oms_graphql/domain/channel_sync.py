"""Pulling orders from a channel: windows, the cursor, leases and the poll schedule.

A pull walks the time since the channel's cursor in windows no longer than the
channel accepts (``oms_channel_max_window``), each ending at least the channel's
lag before now (``oms_channel_min_lag``), and each starting a safety margin
before the cursor, so an order stamped a moment late at the channel is still
seen (seen twice is harmless: ingestion is idempotent).

Nothing is lost when a pull fails half-way or its worker is killed: the window
and the token of the next page are kept on the channel row, written in the same
transaction as the page they follow, so a retry (or another worker) resumes the
same window at the first page not yet stored. The cursor moves to the window's
end in the transaction that stores its last page.

Two workers never pull one channel at once: a pull first takes the channel's
lease with one conditional UPDATE, naming itself as holder. The holder renews
the lease while it works; a killed worker stops renewing, so its lease lapses
after ``OMS_CHANNEL_PULL_LEASE_SECONDS`` and the next poll resumes its window.
Pages are stored only while the lease is still the holder's. The scheduler
claims each due poll the same way, so with any number of workers each channel
is polled once per interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from oms_graphql import redaction
from oms_graphql.db.models import Channel, InboundMessage, Lease, utcnow
from oms_graphql.domain import inbound
from oms_graphql.domain.channels import DEFAULT_SYNC_BACK, channel_config
from oms_graphql.plugins.contract import ChannelConfig, RawOrderPayload

SAFETY_MARGIN = timedelta(minutes=5)


class LeaseLost(RuntimeError):
    """The pull's lease lapsed and another worker took the channel over: stop, store nothing."""


@dataclass(frozen=True)
class PullWindow:
    channel_id: int
    channel: ChannelConfig
    updated_after: datetime
    updated_before: datetime
    page: str | None  # the first page still to store: None for the window's first page
    holder: str
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
    session: AsyncSession,
    channel_id: int,
    max_window: float | None,
    min_lag: float | None,
    holder: str,
    lease: timedelta,
) -> PullWindow | None:
    """Take the channel's pull lease and the window to pull (the unfinished one first).

    None when another worker holds the lease, or there is nothing to pull yet.
    """
    now = utcnow()
    channel = await session.get(Channel, channel_id)
    if channel is None or not channel.active:
        return None
    taken = await session.execute(
        update(Channel)
        .where(Channel.id == channel_id, (Channel.pull_lease_until.is_(None)) | (Channel.pull_lease_until < now))
        .values(pull_lease_until=now + lease, pull_lease_holder=holder)
        .execution_options(synchronize_session=False)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None  # another worker is pulling this channel right now
    await session.refresh(channel)
    if channel.pull_window_after is not None and channel.pull_window_before is not None:
        after, before = channel.pull_window_after, channel.pull_window_before  # resume where it stopped
    else:
        window = window_for(channel, now, max_window, min_lag)
        if window is None:
            channel.pull_lease_until = channel.pull_lease_holder = None
            return None
        after, before = window
        channel.pull_window_after, channel.pull_window_before, channel.pull_page = after, before, None
    up_to_date = now - timedelta(seconds=min_lag or 0)
    return PullWindow(
        channel.id,
        channel_config(channel),
        after,
        before,
        channel.pull_page,
        holder,
        catching_up=before < up_to_date - timedelta(seconds=1),
    )


async def renew_lease(session: AsyncSession, channel_id: int, holder: str, lease: timedelta) -> bool:
    """Keep the holder's lease alive; False once it lapsed and another worker took it."""
    result = await session.execute(
        update(Channel)
        .where(Channel.id == channel_id, Channel.pull_lease_holder == holder)
        .values(pull_lease_until=utcnow() + lease)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def store_page(
    session: AsyncSession,
    window: PullWindow,
    payloads: Sequence[RawOrderPayload],
    next_page: str | None,
    lease: timedelta,
) -> bool:
    """Store one fetched page and the pull's progress with it; True when the window is done.

    The page's orders are stored (each ingested by its own job once this commits),
    the next page's token is kept, and after the last page the cursor moves to the
    window's end and the lease is freed. Raises ``LeaseLost`` if the lease is no
    longer the caller's.
    """
    channel = await session.get(Channel, window.channel_id, with_for_update=True, populate_existing=True)
    if channel is None or channel.pull_lease_holder != window.holder:
        raise LeaseLost(f"the pull lease of channel {window.channel.code} was taken over")
    await inbound.ingest_payloads(session, channel, payloads, None)
    if next_page:
        channel.pull_page = next_page
        channel.pull_lease_until = utcnow() + lease
        return False
    if channel.sync_cursor is None or window.updated_before > channel.sync_cursor:
        channel.sync_cursor = window.updated_before
    channel.pull_window_after = channel.pull_window_before = channel.pull_page = None
    channel.pull_lease_until = channel.pull_lease_holder = None
    channel.last_pulled_at = utcnow()
    channel.last_error = None
    channel.last_error_at = None
    return True


async def versions_to_fetch(
    session: AsyncSession, channel_code: str, payloads: Sequence[RawOrderPayload]
) -> list[RawOrderPayload]:
    """The partial payloads of a page whose version is not stored yet: only these are
    worth a detail call (``oms_channel_fetch_order``); the rest are stored already."""
    partial = [payload for payload in payloads if payload.partial]
    return await inbound.unstored_versions(session, channel_code, partial) if partial else []


async def pull_failed(
    session: AsyncSession, window: PullWindow, error: str, restart_window: bool = False
) -> Channel | None:
    """Free the pull's lease (if still its own) and keep the error for the operators.

    The unfinished window stays, so the next pull resumes it; ``restart_window``
    (a permanent failure, e.g. a page token the channel no longer accepts) makes
    that next pull start the window from its first page again.
    """
    channel = await note_channel_error(session, window.channel_id, error)
    if channel is not None and channel.pull_lease_holder == window.holder:
        channel.pull_lease_until = channel.pull_lease_holder = None
        if restart_window:
            channel.pull_page = None
    return channel


async def note_channel_error(session: AsyncSession, channel_id: int, error: str) -> Channel | None:
    """Keep a sync error on the channel, where operators see it (``Channel.lastError``)."""
    channel = await session.get(Channel, channel_id)
    if channel is not None:
        channel.last_error = redaction.redact(error)[:4000]
        channel.last_error_at = utcnow()
    return channel


async def claim_due_polls(session: AsyncSession, pulling_kinds: set[str]) -> list[int]:
    """Channels whose poll interval has passed, each claimed by exactly one caller."""
    return await _claim_due(session, pulling_kinds, Channel.last_polled_at, lambda interval: interval)


async def claim_due_reconciles(session: AsyncSession, pulling_kinds: set[str], every: timedelta) -> list[int]:
    """Channels last reconciled ``every`` ago (a new channel: ``every`` after it was created),
    each claimed by exactly one caller."""
    return await _claim_due(
        session, pulling_kinds, Channel.reconciled_at, lambda _interval: every.total_seconds(), from_creation=True
    )


async def _claim_due(
    session: AsyncSession,
    kinds: set[str],
    stamp: InstrumentedAttribute,
    seconds_between: Callable[[int], float],
    from_creation: bool = False,
) -> list[int]:
    now = utcnow()
    candidates = (
        await session.execute(
            select(Channel.id, stamp, Channel.created_at, Channel.poll_interval_seconds).where(
                Channel.active.is_(True), Channel.kind.in_(kinds)
            )
        )
    ).all()
    claimed = []
    for channel_id, last, created_at, interval in candidates:
        since = last if last is not None or not from_creation else created_at
        if since is not None and since > now - timedelta(seconds=seconds_between(interval)):
            continue
        # Conditional on the value we read: of several schedulers, one wins the row.
        condition = stamp.is_(None) if last is None else stamp == last
        result = await session.execute(
            update(Channel)
            .where(Channel.id == channel_id, condition)
            .values({stamp.key: now})
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


async def stuck_messages(session: AsyncSession, older_than: timedelta, limit: int = 500) -> list[tuple[int, str]]:
    """RECEIVED messages whose job has been missing for ``older_than`` (a worker died, a job was
    lost), marked as queued again: the caller sends the job of each (id, kind)."""
    now = utcnow()
    waiting_since = func.coalesce(InboundMessage.queued_at, InboundMessage.received_at)
    rows = (
        await session.execute(
            select(InboundMessage.id, InboundMessage.kind)
            .where(
                InboundMessage.status == "RECEIVED",
                waiting_since < now - older_than,
                InboundMessage.kind.in_(("ORDER", "WEBHOOK", "TRACKING")),
            )
            .order_by(InboundMessage.id)
            .limit(limit)
        )
    ).all()
    if rows:
        await session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_([message_id for message_id, _kind in rows]))
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )
    return [(message_id, kind) for message_id, kind in rows]
