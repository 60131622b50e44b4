"""Channel payloads in: raw body → InboundMessage → parse → upsert, losing nothing.

Each raw order body is stored as an ``InboundMessage`` before the plugin
parses it. A body that cannot be parsed is kept as FAILED with the error and
can be replayed after a fix; a pushed request with a bad signature is kept as
REJECTED. What a message says about its order is applied by
:mod:`oms_graphql.domain.ingestion`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql import redaction
from oms_graphql.db.models import (
    Channel,
    InboundMessage,
    Order,
    utcnow,
)
from oms_graphql.domain import ingestion
from oms_graphql.domain.channels import channel_config
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.ingestion import upsert_order
from oms_graphql.domain.ingestion_bulk import PlainOrder, create_plain_orders
from oms_graphql.events.outbox import request_job
from oms_graphql.plugins.contract import (
    ChannelConfig,
    NormalizedOrder,
    PayloadError,
    RawOrderPayload,
)

log = structlog.get_logger(__name__)

RECEIVED, PROCESSED, FAILED, REJECTED = "RECEIVED", "PROCESSED", "FAILED", "REJECTED"
ORDER, WEBHOOK = "ORDER", "WEBHOOK"
INGEST_JOB = "ingest_inbound_message"
BATCH_JOB = "ingest_inbound_batch"
ALLOCATE_BATCH_JOB = "allocate_order_batch"
# A version asked for this long after its stamp holds every change of that second (whole
# seconds at the channel, and a second of clock difference between us and the channel).
SAME_SECOND = timedelta(seconds=2)

# The job layer passes the plugin call in: (channel, raw body) → normalised order.
Parse = Callable[[Channel, dict[str, Any]], NormalizedOrder | None]


def encode_body(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


# --- storing raw payloads ---------------------------------------------------


async def store_message(
    session: AsyncSession,
    *,
    source: str,
    kind: str,
    body: str,
    external_id: str | None = None,
    headers: dict[str, Any] | None = None,
    status: str = RECEIVED,
    error: str | None = None,
    channel_updated_at: datetime | None = None,
    fetched_at: datetime | None = None,
    event_id: str | None = None,
) -> InboundMessage:
    message = InboundMessage(
        event_id=event_id,
        channel_updated_at=channel_updated_at,
        fetched_at=fetched_at,
        source=source,
        kind=kind,
        external_id=external_id,
        body=body,
        headers=headers,
        status=status,
        error=error,
        digest=digest(body),
        received_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    return message


async def _already_stored(session: AsyncSession, source: str, payloads: Sequence[tuple[str, str]]) -> set[str]:
    """Digests of these (external id, digest) pairs that are stored already."""
    if not payloads:
        return set()
    rows = await session.scalars(
        select(InboundMessage.digest).where(
            InboundMessage.source == source,
            InboundMessage.external_id.in_({external_id for external_id, _ in payloads}),
            InboundMessage.digest.in_({body_digest for _, body_digest in payloads}),
        )
    )
    return {found for found in rows.all() if found}


async def unstored_versions(
    session: AsyncSession, source: str, payloads: Sequence[RawOrderPayload]
) -> list[RawOrderPayload]:
    """The payloads whose version of the order is not stored yet.

    A version is stored when a message of that order (received, processed, or
    failed and waiting for a replay) has a newer channel stamp, or the same stamp
    and was asked for after that stamp's second had passed: channels stamp whole
    seconds, and two changes within one second share a stamp. A payload without
    a stamp counts as unstored when it is partial (only the full order tells);
    for a complete one the digest check of ``ingest_payloads`` decides.
    """
    ids = {payload.external_id for payload in payloads}
    if not ids:
        return []
    rows = await session.execute(
        select(InboundMessage.external_id, InboundMessage.channel_updated_at, InboundMessage.fetched_at).where(
            InboundMessage.source == source,
            InboundMessage.external_id.in_(ids),
            InboundMessage.kind == ORDER,
            InboundMessage.status != REJECTED,
        )
    )
    versions: dict[str | None, list[tuple[datetime | None, datetime | None]]] = {}
    for external_id, stamp, fetched_at in rows.all():
        versions.setdefault(external_id, []).append((stamp, fetched_at))

    def stored(payload: RawOrderPayload) -> bool:
        listed = payload.updated_at
        if listed is None:
            return False
        return any(
            stamp is not None
            and (stamp > listed or (stamp == listed and (fetched_at is None or fetched_at >= listed + SAME_SECOND)))
            for stamp, fetched_at in versions.get(payload.external_id, [])
        )

    return [payload for payload in payloads if not stored(payload)]


@dataclass(frozen=True)
class IngestOutcome:
    message_id: int
    status: str
    order_id: int | None = None
    outcome: str | None = None


async def ingest_payloads(
    session: AsyncSession, channel: Channel, payloads: Sequence[RawOrderPayload], parse: Parse | None
) -> list[IngestOutcome]:
    """Store one page of raw orders in the caller's transaction, and ingest them.

    An order whose exact body is stored already (a re-pull of the overlap, a
    duplicate delivery) is skipped: it was ingested, or it failed and waits for a
    replay. The page's new bodies are stored with one multi-row insert. With
    ``parse`` they are ingested here (:func:`ingest_batch`); without it the page
    gets one ``ingest_inbound_batch`` job once it commits (a pull does that: many
    workers then ingest one channel's pages side by side).
    """
    encoded = [(payload, encode_body(payload.body)) for payload in payloads]
    known = await _already_stored(session, channel.code, [(p.external_id, digest(text)) for p, text in encoded])
    fresh: dict[str, tuple[RawOrderPayload, str]] = {}
    for payload, text in encoded:
        body_digest = digest(text)
        if body_digest not in known and body_digest not in fresh:
            fresh[body_digest] = (payload, text)
    if not fresh:
        return []
    now = utcnow()
    ids = list(
        (
            await session.execute(
                insert(InboundMessage).returning(InboundMessage.id, sort_by_parameter_order=True),
                [
                    {
                        "source": channel.code,
                        "kind": ORDER,
                        "external_id": payload.external_id,
                        "body": text,
                        "status": RECEIVED,
                        "digest": body_digest,
                        "received_at": now,
                        "queued_at": now,
                        "channel_updated_at": payload.updated_at,
                        "fetched_at": payload.fetched_at,
                    }
                    for body_digest, (payload, text) in fresh.items()
                ],
            )
        ).scalars()
    )
    if parse is not None:
        return await ingest_batch(session, ids, parse)
    request_job(session, BATCH_JOB, message_ids=ids)
    return [IngestOutcome(message_id, RECEIVED) for message_id in ids]


async def ingest_batch(session: AsyncSession, message_ids: Sequence[int], parse: Parse) -> list[IngestOutcome]:
    """Ingest these stored RECEIVED order messages (a page) in the caller's transaction.

    The page's new plain orders are created together (:mod:`.ingestion_bulk`) and get one
    allocation job between them; every other order (an update, a store sale, a hold, a
    buyer whose profile was merged, one with problems) is upserted on its own in a savepoint, so one bad order ends
    FAILED, replayable, and the rest of the page goes on. Messages done already (a repeated
    job; the sweeper's single-message job that won the race) are skipped.
    """
    messages = list(
        (
            await session.scalars(
                select(InboundMessage)
                .where(
                    InboundMessage.id.in_(message_ids),
                    InboundMessage.status == RECEIVED,
                    InboundMessage.kind == ORDER,
                )
                .order_by(InboundMessage.id)
                .with_for_update()
            )
        ).all()
    )
    sources = {message.source for message in messages}
    channels = {
        channel.code: channel
        for channel in (await session.scalars(select(Channel).where(Channel.code.in_(sources)))).all()
    }
    outcomes: list[IngestOutcome] = []
    to_allocate: list[int] = []
    for source in sorted(sources):
        mine = [message for message in messages if message.source == source]
        channel = channels.get(source)
        if channel is None:
            outcomes += [_finish(m, FAILED, error=f"No channel has code {source!r} any more.") for m in mine]
            continue
        outcomes += await _ingest_channel_page(session, channel, mine, parse, to_allocate)
    if to_allocate:
        request_job(session, ALLOCATE_BATCH_JOB, order_ids=sorted(to_allocate))
    return sorted(outcomes, key=lambda outcome: outcome.message_id)


async def _ingest_channel_page(
    session: AsyncSession,
    channel: Channel,
    messages: list[InboundMessage],
    parse: Parse,
    to_allocate: list[int],
) -> list[IngestOutcome]:
    outcomes: list[IngestOutcome] = []
    parsed: list[tuple[InboundMessage, NormalizedOrder]] = []
    for message in messages:
        normalized = _parse(channel, message, parse)
        if isinstance(normalized, IngestOutcome):
            outcomes.append(normalized)
        else:
            parsed.append((message, normalized))
    times_seen = Counter(normalized.external_id for _, normalized in parsed)
    existing = set(
        (
            await session.scalars(
                select(Order.external_id).where(Order.channel_id == channel.id, Order.external_id.in_(times_seen))
            )
        ).all()
    )
    # Two versions of one order in a page go through the upsert, in order.
    candidates = [
        (message, normalized)
        for message, normalized in parsed
        if times_seen[normalized.external_id] == 1 and normalized.external_id not in existing
    ]
    plain = []
    lines = await ingestion.resolve_lines(session, channel, [normalized for _, normalized in candidates])
    for (message, normalized), resolved in zip(candidates, lines, strict=True):
        new_order = ingestion.new_order_from(channel, normalized, resolved, None)
        if ingestion.is_plain_new_order(normalized, new_order):
            plain.append(PlainOrder(message.id, new_order, normalized.updated_at or normalized.placed_at))
    created = await create_plain_orders(session, channel, plain) if plain else {}
    for message, normalized in parsed:
        if (made := created.get(message.id)) is None:
            outcomes.append(await _upsert(session, channel, message, normalized))
            continue
        if message.external_id is None:
            message.external_id = normalized.external_id
        outcomes.append(_finish(message, PROCESSED, order_id=made.order_id, outcome="created"))
        if made.status == "CONFIRMED":
            to_allocate.append(made.order_id)
    return outcomes


async def ingest_message(
    session: AsyncSession, channel: Channel, message: InboundMessage, parse: Parse
) -> IngestOutcome:
    """Parse one stored ORDER message and upsert its order; the message records the result."""
    parsed = _parse(channel, message, parse)
    if isinstance(parsed, IngestOutcome):
        return parsed
    return await _upsert(session, channel, message, parsed)


def _parse(channel: Channel, message: InboundMessage, parse: Parse) -> NormalizedOrder | IngestOutcome:
    """The message's order as the plugin reads it, or the message FAILED with the reason."""
    message.attempts = (message.attempts or 0) + 1
    try:
        normalized = parse(channel, json.loads(message.body))
        if normalized is None:
            raise PayloadError(f"No installed plugin parses orders of channel kind {channel.kind!r}")
    except (ValueError, PayloadError) as error:
        return _finish(message, FAILED, error=f"{type(error).__name__}: {error}")
    except Exception as error:  # a plugin bug: keep the message, show the error, allow a replay
        log.warning("plugin failed to parse an order", channel=channel.code, message_id=message.id, error=repr(error))
        return _finish(message, FAILED, error=f"The plugin failed: {error!r}")
    return normalized


async def _upsert(
    session: AsyncSession, channel: Channel, message: InboundMessage, normalized: NormalizedOrder
) -> IngestOutcome:
    """Upsert the message's order in a savepoint: a bad order leaves the message FAILED, the rest goes on."""
    try:
        async with session.begin_nested():
            order, what = await upsert_order(session, channel, normalized)
    except DomainError as error:
        return _finish(message, FAILED, error="; ".join(problem.message for problem in error.problems))
    except DBAPIError:
        raise  # a database failure: the job retries the whole page
    except Exception as error:
        log.exception("order upsert failed", channel=channel.code, message_id=message.id)
        return _finish(message, FAILED, error=f"Unexpected error: {error!r}")
    if message.external_id is None:
        message.external_id = normalized.external_id
    return _finish(message, PROCESSED, order_id=order.id, outcome=what)


def record_outcome(
    message: InboundMessage,
    status: str,
    *,
    error: str | None = None,
    outcome: str | None = None,
) -> None:
    """Mark a stored message PROCESSED or FAILED (with the error), for messages other modules read."""
    _finish(message, status, error=error, outcome=outcome)


def _finish(
    message: InboundMessage,
    status: str,
    *,
    error: str | None = None,
    order_id: int | None = None,
    outcome: str | None = None,
) -> IngestOutcome:
    message.status = status
    error = redaction.redact(error) if error else None
    message.error = error[:4000] if error else None
    message.processed_at = utcnow()
    if order_id is not None:
        message.order_id = order_id
    message.outcome = redaction.redact(outcome or error or "")[:300] or None
    return IngestOutcome(message.id, status, order_id, outcome or error)


async def replay_message(session: AsyncSession, message: InboundMessage) -> InboundMessage:
    """Queue a stored message to be ingested again (after a plugin fix, a mapping, …)."""
    if message.status == RECEIVED:
        raise DomainError("This message is waiting to be ingested already.", ("id",), "ALREADY_QUEUED")
    if message.kind not in (ORDER, WEBHOOK):
        raise DomainError(f"{message.kind} messages cannot be replayed here.", ("id",), "NOT_REPLAYABLE")
    message.status = RECEIVED
    message.error = None
    message.outcome = None
    queue_message(session, message)
    return message


def queue_message(session: AsyncSession, message: InboundMessage) -> None:
    """Ask for the message's ingest job once this transaction commits."""
    message.queued_at = utcnow()
    request_job(session, INGEST_JOB, message_id=message.id)


# --- stored messages, one at a time (webhooks, replays, the sweeper) -------


async def _locked_message(session: AsyncSession, message_id: int) -> InboundMessage | None:
    return await session.scalar(select(InboundMessage).where(InboundMessage.id == message_id).with_for_update())


async def _channel_of(session: AsyncSession, message: InboundMessage) -> Channel | None:
    return await session.scalar(select(Channel).where(Channel.code == message.source))


@dataclass(frozen=True)
class PendingWebhook:
    message_id: int
    channel: ChannelConfig
    body: Any


async def ingest_stored(session: AsyncSession, message_id: int, parse: Parse) -> IngestOutcome | PendingWebhook | None:
    """Ingest a stored RECEIVED order message; a webhook is handed back to be expanded outside
    the transaction (that may need the network). None when there is nothing to do."""
    message = await _locked_message(session, message_id)
    if message is None or message.status != RECEIVED:
        return None  # done already (a duplicate job, or the sweeper's second try)
    channel = await _channel_of(session, message)
    if channel is None:
        return _finish(message, FAILED, error=f"No channel has code {message.source!r} any more.")
    if message.kind == WEBHOOK:
        try:
            body = json.loads(message.body)
        except ValueError as error:
            return _finish(message, FAILED, error=f"The webhook body is not JSON: {error}")
        return PendingWebhook(message.id, channel_config(channel), body)
    return await ingest_message(session, channel, message, parse)


async def finish_webhook(
    session: AsyncSession,
    message_id: int,
    payloads: Sequence[RawOrderPayload] | None,
    parse: Parse,
    error: str | None = None,
) -> IngestOutcome | None:
    """Store and ingest the orders a webhook concerns, or keep it FAILED with ``error``."""
    message = await _locked_message(session, message_id)
    if message is None or message.status != RECEIVED:
        return None
    message.attempts = (message.attempts or 0) + 1
    if error is not None or payloads is None:
        return _finish(message, FAILED, error=error or "The plugin could not expand this webhook")
    channel = await _channel_of(session, message)
    if channel is None:
        return _finish(message, FAILED, error=f"No channel has code {message.source!r} any more.")
    outcomes = await ingest_payloads(session, channel, payloads, parse)
    if len(payloads) == 1 and message.external_id is None:
        message.external_id = payloads[0].external_id
    failed = sum(1 for outcome in outcomes if outcome.status == FAILED)
    summary = f"{len(payloads)} order(s); {len(outcomes)} new version(s); {failed} failed"
    order_id = next((outcome.order_id for outcome in outcomes if outcome.order_id), None)
    return _finish(message, PROCESSED, order_id=order_id, outcome=summary)


async def reject_message(session: AsyncSession, message_id: int, reason: str) -> None:
    message = await session.get(InboundMessage, message_id)
    if message is not None:
        _finish(message, REJECTED, error=reason)
