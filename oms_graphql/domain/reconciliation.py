"""Reconciliation (补单): list a trailing window again and store whatever is missing.

The incremental pull is the fast path; this is the safety net a merchant relies
on when a marketplace was down, a worker died at a bad moment or a notification
never came. A reconciliation lists every order changed in the window (by
default the last ``OMS_CHANNEL_RECONCILE_HOURS``) through the same list API as
the pull, without touching the pull's cursor, and stores each order whose
version is not stored yet. Its counts (listed / already stored / newly stored)
are kept on the channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Channel, utcnow
from oms_graphql.domain import inbound
from oms_graphql.domain.channels import kind_of
from oms_graphql.domain.errors import DomainError, NotFound
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.contract import ChannelConfig, RawOrderPayload

MAX_WINDOW_DEFAULT = timedelta(days=7)
RECONCILE_JOB = "reconcile_channel"


def check_since(since: datetime | None) -> None:
    if since is not None and since >= utcnow():
        raise DomainError(
            "since must be in the past: give the time from which to list orders again, such as 24 hours ago.",
            ("since",),
            "INVALID",
        )


async def request_reconcile(session: AsyncSession, channel: Channel, since: datetime | None) -> None:
    """Reconcile the channel from ``since`` (default: the trailing window) once this commits."""
    if not kind_of(channel.kind).pulls_orders:
        raise NotFound(f"{channel.kind} channels have no order list to reconcile against.", ("channelCode",))
    check_since(since)
    request_job(session, RECONCILE_JOB, channel_id=channel.id, since=since.isoformat() if since else None)


@dataclass
class ReconcileSummary:
    """What one reconciliation found; ``listed`` counts each order once however often it was listed."""

    since: datetime
    until: datetime
    listed: int = 0
    already_stored: int = 0
    newly_stored: int = 0
    failed: int = 0
    seen: set[str] = field(default_factory=set, repr=False)

    def count(self, listed: Sequence[RawOrderPayload], unstored: Sequence[RawOrderPayload]) -> None:
        fresh = {payload.external_id for payload in listed} - self.seen
        self.seen |= fresh
        self.listed += len(fresh)
        missing = {payload.external_id for payload in unstored} & fresh
        self.already_stored += len(fresh - missing)

    def as_json(self, finished_at: datetime | None = None) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "listed": self.listed,
            "alreadyStored": self.already_stored,
            "newlyStored": self.newly_stored,
            "failed": self.failed,
            "finishedAt": (finished_at or utcnow()).isoformat(),
        }


@dataclass(frozen=True)
class ReconcileRun:
    channel_id: int
    channel: ChannelConfig
    windows: list[tuple[datetime, datetime]]
    summary: ReconcileSummary


def split_windows(since: datetime, until: datetime, max_window: float | None) -> list[tuple[datetime, datetime]]:
    """``[since, until)`` in windows the channel accepts (two seconds under its limit, as pulls do)."""
    longest = timedelta(seconds=max(max_window - 2, 1)) if max_window else MAX_WINDOW_DEFAULT
    windows = []
    start = since
    while start < until:
        end = min(start + longest, until)
        windows.append((start, end))
        start = end
    return windows


def begin_reconcile(
    channel: Channel,
    config: ChannelConfig,
    since: datetime | None,
    default_hours: float,
    max_window: float | None,
    min_lag: float | None,
) -> ReconcileRun:
    """The windows to list for ``channel`` from ``since`` (default: the trailing window) until now."""
    check_since(since)
    until = utcnow() - timedelta(seconds=min_lag or 0)
    start = min(since or until - timedelta(hours=default_hours), until)
    return ReconcileRun(
        channel.id, config, split_windows(start, until, max_window), ReconcileSummary(since=start, until=until)
    )


async def unstored(
    session: AsyncSession, run: ReconcileRun, listed: Sequence[RawOrderPayload]
) -> list[RawOrderPayload]:
    """The listed orders whose version is not stored; counted into the run's summary."""
    missing = await inbound.unstored_versions(session, run.channel.code, listed)
    run.summary.count(listed, missing)
    return missing


async def store_missing(
    session: AsyncSession, run: ReconcileRun, payloads: Sequence[RawOrderPayload], parse: inbound.Parse
) -> None:
    """Store and ingest the missing orders at once (they are few: the pull missed them)."""
    channel = await session.get(Channel, run.channel_id)
    if channel is None or not payloads:
        return
    outcomes = await inbound.ingest_payloads(session, channel, payloads, parse)
    run.summary.newly_stored += len(outcomes)
    run.summary.failed += sum(1 for outcome in outcomes if outcome.status == inbound.FAILED)


async def finish_reconcile(session: AsyncSession, run: ReconcileRun) -> dict[str, Any]:
    channel = await session.get(Channel, run.channel_id)
    now = utcnow()
    result = run.summary.as_json(now)
    if channel is not None:
        channel.reconciled_at = now
        channel.last_reconcile = result
    return result
