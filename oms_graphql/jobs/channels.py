"""Channel jobs: ingest stored messages, push stock, confirm shipments, schedule polls.

Pulls and reconciliations are in :mod:`oms_graphql.jobs.channel_pulls`.

Every actor loads ids, calls the domain in short transactions and calls the
plugin between them (plugin I/O never runs inside a transaction). A plugin's
``RetryableError`` becomes ``dramatiq.Retry`` with its ``retry_after``; a
``PermanentError`` parks the work and raises an alert.

This module is also a small built-in plugin: its ``oms_stock_changed`` hook
(called by the inventory jobs, debounced per SKU) queues the channel's push.
"""

from __future__ import annotations

import os
import threading
import uuid
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from oms_graphql.config import get_settings
from oms_graphql.db.models import Channel
from oms_graphql.domain import channel_sync, inbound, shipments, stock_push, tracking
from oms_graphql.domain.channels import PULL_JOB, channel_config, raise_alert
from oms_graphql.domain.reconciliation import RECONCILE_JOB
from oms_graphql.jobs import reports
from oms_graphql.jobs.broker import send_job
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.contract import (
    NormalizedOrder,
    PayloadError,
    PermanentError,
    RetryableError,
)
from oms_graphql.plugins.hookspecs import hookimpl
from oms_graphql.plugins.host import channel_kinds, plugin_manager, register_builtin

log = structlog.get_logger(__name__)

SYNC_FAILED = "SYNC_FAILED"


def plugin_hook() -> Any:
    return plugin_manager().hook


def as_retry(error: RetryableError) -> dramatiq.Retry:
    """A plugin's RetryableError as Dramatiq's Retry, honouring its retry_after."""
    delay = int(error.retry_after * 1000) if error.retry_after is not None else None
    return dramatiq.Retry(str(error), delay=delay)


_configs: dict[tuple[str, str | None, int], Any] = {}


def parse_order(channel: Channel, body: dict[str, Any]) -> NormalizedOrder | None:
    """The plugin's parse hook for a stored body (pure: no I/O)."""
    # Decrypting the settings once per channel version keeps a page of orders cheap.
    key = (channel.code, channel.secrets_encrypted, hash(repr(sorted((channel.settings or {}).items()))))
    config = _configs.get(key)
    if config is None:
        config = _configs[key] = channel_config(channel)
    return plugin_hook().oms_channel_parse_order(channel=config, body=body)


# --- ingesting one stored message -----------------------------------------


@dramatiq.actor(queue_name="channels", max_retries=20)
def ingest_inbound_message(message_id: int) -> None:
    """Ingest one stored message (a webhook, a replay, or one the sweeper found unfinished)."""
    result = in_transaction(lambda session: inbound.ingest_stored(session, message_id, parse_order))
    if not isinstance(result, inbound.PendingWebhook):
        return
    error: str | None = None
    payloads = None
    try:
        payloads = plugin_hook().oms_channel_expand_webhook(channel=result.channel, body=result.body)
        if payloads is None:
            error = f"No installed plugin reads webhooks of channel kind {result.channel.kind!r}"
    except RetryableError as exc:
        raise as_retry(exc) from exc
    except (PermanentError, PayloadError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a plugin bug: keep the message FAILED, replayable after a fix
        log.exception("webhook expansion failed", message_id=message_id)
        error = f"The plugin failed: {exc!r}"
    in_transaction(lambda session: inbound.finish_webhook(session, message_id, payloads, parse_order, error=error))


@dramatiq.actor(queue_name="channels", max_retries=20)
def ingest_inbound_batch(message_ids: list[int]) -> None:
    """Ingest a pulled page of stored order messages in one transaction (one bad order ends
    FAILED, the rest PROCESSED). Killed half-way, nothing is committed: the job is retried,
    and the sweeper re-queues each message still RECEIVED on its own."""
    outcomes = in_transaction(lambda session: inbound.ingest_batch(session, message_ids, parse_order))
    log.info(
        "page ingested",
        messages=len(message_ids),
        done=len(outcomes),
        failed=sum(1 for outcome in outcomes if outcome.status == inbound.FAILED),
    )


# --- stock push -------------------------------------------------------------


class StockPushOnChange:
    """The built-in ``oms_stock_changed``: push the channel's listing of the SKU soon."""

    @hookimpl
    def oms_stock_changed(self, channel_code: str, sku: str) -> None:
        channel_id = in_transaction(lambda session: stock_push.mark_listings_due(session, channel_code, sku))
        if channel_id is not None:
            schedule_stock_push(channel_id)


register_builtin("oms-channel-stock-push", StockPushOnChange())


def schedule_stock_push(channel_id: int) -> None:
    delay = timedelta(seconds=get_settings().stock_push_debounce_seconds)
    if in_transaction(lambda session: stock_push.schedule_push(session, channel_id, delay)):
        push_channel_stock.send_with_options(kwargs={"channel_id": channel_id}, delay=int(delay.total_seconds() * 1000))


@dramatiq.actor(queue_name="channels", max_retries=20)
def push_channel_stock(channel_id: int, everything: bool = False) -> None:
    """Push the sellable quantity of every listing due (or, ``everything``, of all listings)."""
    batch = in_transaction(lambda session: stock_push.pending_pushes(session, channel_id, everything))
    if batch is None or not batch.pushes:
        return
    try:
        results = plugin_hook().oms_channel_push_stock(channel=batch.channel, pushes=batch.pushes)
    except RetryableError as error:
        raise as_retry(error) from error
    except PermanentError as error:
        problem = str(error)

        async def park(session: Any) -> None:
            await channel_sync.note_channel_error(session, channel_id, f"Stock push failed: {problem}")
            await raise_alert(session, SYNC_FAILED, f"Pushing stock to {batch.channel.code} failed: {problem}")

        in_transaction(park)
        return
    if results is None:
        return  # the channel's plugin does not take stock
    accepted, refused = in_transaction(lambda session: stock_push.record_push(session, channel_id, batch, results))
    log.info("stock pushed", channel=batch.channel.code, accepted=accepted, refused=refused)


# --- shipment confirmation -------------------------------------------------


@dramatiq.actor(queue_name="channels", max_retries=50, max_backoff=60 * 60 * 1000)
def confirm_shipment(shipment_id: int) -> None:
    """Tell the channel a shipment left; retried until the channel accepts it."""
    found = in_transaction(lambda session: shipments.confirmation_for(session, shipment_id))
    if found is None:
        return
    config, confirmation = found
    try:
        accepted = plugin_hook().oms_channel_confirm_shipment(channel=config, shipment=confirmation)
        error = None if accepted else "the channel did not accept the confirmation"
        if accepted is None:
            error = f"No installed plugin confirms shipments for channel kind {config.kind!r}"
    except RetryableError as exc:
        _refused(shipment_id, config.code, confirmation.external_order_id, str(exc), permanent=False)
        raise as_retry(exc) from exc
    except PermanentError as exc:
        _refused(shipment_id, config.code, confirmation.external_order_id, str(exc), permanent=True)
        return
    if error is not None:
        _refused(shipment_id, config.code, confirmation.external_order_id, error, permanent=accepted is None)
        if accepted is None:
            return
        raise dramatiq.Retry(error)
    in_transaction(lambda session: shipments.record_confirmation(session, shipment_id, accepted=True))
    log.info("shipment confirmed to the channel", channel=config.code, order=confirmation.external_order_id)


def _refused(shipment_id: int, channel_code: str, order_id: str, error: str, *, permanent: bool) -> None:
    in_transaction(
        lambda session: shipments.record_refusal(
            session, shipment_id, channel_code, order_id, error, permanent=permanent
        )
    )


# --- the scheduler ----------------------------------------------------------

SWEEP_LEASE = "channels.sweep"
DELIVERY_LEASE = "delivery.sweep"


def scheduler_tick(holder: str) -> tuple[list[int], list[int]]:
    """One tick: claim due polls and reconciliations (each by exactly one worker), poll open
    shipments' tracking and alert late ones, ask for the daily forecast refresh, and re-queue
    stuck messages."""
    settings = get_settings()
    pulling = {kind.kind for kind in channel_kinds().values() if kind.pulls_orders}
    due = in_transaction(lambda session: channel_sync.claim_due_polls(session, pulling)) if pulling else []
    for channel_id in due:
        send_job(PULL_JOB, {"channel_id": channel_id})
    if pulling and settings.channel_reconcile_seconds > 0:
        every = timedelta(seconds=settings.channel_reconcile_seconds)
        for channel_id in in_transaction(lambda session: channel_sync.claim_due_reconciles(session, pulling, every)):
            send_job(RECONCILE_JOB, {"channel_id": channel_id})
    sweep_every = timedelta(seconds=max(settings.channel_tick_seconds, settings.stuck_message_seconds / 5))

    async def sweep(session: Any) -> list[tuple[int, str]]:
        if not await channel_sync.take_lease(session, SWEEP_LEASE, holder, sweep_every):
            return []
        return await channel_sync.stuck_messages(session, timedelta(seconds=settings.stuck_message_seconds))

    async def delivery_sweep(session: Any) -> list[int]:
        if not await channel_sync.take_lease(session, DELIVERY_LEASE, holder, sweep_every):
            return []
        await tracking.alert_late_shipments(session)
        if settings.tracking_poll_seconds <= 0:
            return []
        return await tracking.due_for_polling(session, timedelta(seconds=settings.tracking_poll_seconds))

    for shipment_id in in_transaction(delivery_sweep):
        send_job(tracking.POLL_JOB, {"shipment_id": shipment_id})

    if (hour := settings.forecast_refresh_hour) is not None:
        zone = ZoneInfo(settings.report_timezone)
        in_transaction(lambda session: reports.claim_forecast_refresh(session, holder, zone, hour))
    stuck = in_transaction(sweep)
    for message_id, kind in stuck:
        if kind == "TRACKING":
            send_job(tracking.TRACKING_JOB, {"message_id": message_id})
        else:
            ingest_inbound_message.send(message_id=message_id)
    return due, [message_id for message_id, _kind in stuck]


class ChannelScheduler(Middleware):
    """Runs the scheduler tick in every worker process; the database decides who does what."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.holder = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if not get_settings().channel_scheduler or self.thread is not None:
            return
        self.stop.clear()
        self.thread = threading.Thread(target=self._run, name="channel-scheduler", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.stop.set()
        self.thread = None

    def _run(self) -> None:
        interval = get_settings().channel_tick_seconds
        while not self.stop.wait(interval):
            try:
                scheduler_tick(self.holder)
            except Exception:
                log.exception("channel scheduler tick failed; trying again next tick")


def _install_scheduler() -> None:
    broker = dramatiq.get_broker()
    if not any(isinstance(middleware, ChannelScheduler) for middleware in broker.middleware):
        broker.add_middleware(ChannelScheduler())


_install_scheduler()
