"""Channel jobs: pull orders, ingest stored messages, push stock, confirm shipments, schedule polls.

Every actor loads ids, calls the domain in short transactions and calls the
plugin between them (plugin I/O never runs inside a transaction). A plugin's
``RetryableError`` becomes ``dramatiq.Retry`` with its ``retry_after``; a
``PermanentError`` parks the work and raises an alert.

This module is also a small built-in plugin: its ``oms_stock_changed`` hook
(called by the inventory jobs, debounced per SKU) queues the channel's push.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from oms_graphql.config import get_settings
from oms_graphql.db.models import Channel, utcnow
from oms_graphql.domain import channel_sync, inbound, reconciliation, shipments, stock_push
from oms_graphql.domain.channels import channel_config, raise_alert
from oms_graphql.domain.errors import DomainError
from oms_graphql.jobs.broker import send_job
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.contract import (
    ChannelConfig,
    NormalizedOrder,
    PayloadError,
    PermanentError,
    RawOrderPayload,
    RetryableError,
)
from oms_graphql.plugins.hookspecs import hookimpl
from oms_graphql.plugins.host import channel_kinds, plugin_manager, register_builtin

log = structlog.get_logger(__name__)

SYNC_FAILED = "SYNC_FAILED"


def _hook() -> Any:
    return plugin_manager().hook


def _retry(error: RetryableError) -> dramatiq.Retry:
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
    return _hook().oms_channel_parse_order(channel=config, body=body)


# --- pulling ----------------------------------------------------------------


class LeaseRenewer:
    """Renews the pull leases this process holds while their pulls run.

    One thread per process (each job thread would otherwise need a database engine of
    its own for it). A killed process renews nothing, so its leases lapse within
    ``OMS_CHANNEL_PULL_LEASE_SECONDS`` and another worker resumes the pull.
    """

    def __init__(self) -> None:
        self.held: dict[tuple[int, str], timedelta] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @contextlib.contextmanager
    def holding(self, channel_id: int, holder: str, lease: timedelta) -> Iterator[None]:
        with self.lock:
            self.held[(channel_id, holder)] = lease
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="pull-lease-renewer", daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                self.held.pop((channel_id, holder), None)

    def _run(self) -> None:
        while True:
            time.sleep(max(get_settings().channel_pull_lease_seconds / 3, 0.2))
            with self.lock:
                held = dict(self.held)
            for (channel_id, holder), lease in held.items():
                try:
                    in_transaction(partial(channel_sync.renew_lease, channel_id=channel_id, holder=holder, lease=lease))
                except Exception:
                    log.exception("renewing a pull lease failed; trying again shortly", channel_id=channel_id)


_renewer = LeaseRenewer()


def complete_payloads(
    channel: ChannelConfig, payloads: list[RawOrderPayload], to_fetch: list[RawOrderPayload], listed_at: datetime
) -> list[RawOrderPayload]:
    """The page as it is to be stored: complete orders as listed, and for each partial one
    whose version is new, the full order from ``oms_channel_fetch_order``. A partial
    summary itself is never stored: it would read as an order without its address."""
    complete = [replace(payload, fetched_at=listed_at) for payload in payloads if not payload.partial]
    for summary in to_fetch:
        asked_at = utcnow()
        full = _hook().oms_channel_fetch_order(channel=channel, external_id=summary.external_id)
        if full is None:
            raise PermanentError(f"No installed plugin fetches single orders for channel kind {channel.kind!r}")
        complete.append(replace(full, fetched_at=asked_at))
    return complete


@dramatiq.actor(queue_name="channels", max_retries=30, max_backoff=5 * 60 * 1000)
def pull_channel_orders(channel_id: int) -> None:
    """Pull the channel's changed orders, one window at a time, resuming where the last try stopped."""
    config = in_transaction(lambda session: _config_of(session, channel_id))
    if config is None:
        return
    hook = _hook()
    max_window = hook.oms_channel_max_window(channel=config)
    min_lag = hook.oms_channel_min_lag(channel=config)
    lease = timedelta(seconds=get_settings().channel_pull_lease_seconds)
    holder = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    window = in_transaction(
        lambda session: channel_sync.begin_pull(session, channel_id, max_window, min_lag, holder, lease)
    )
    if window is None:
        return
    page, pages, orders = window.page, 0, 0
    try:
        with _renewer.holding(channel_id, holder, lease):
            while True:
                listed_at = utcnow()
                result = hook.oms_channel_fetch_orders(
                    channel=window.channel,
                    updated_after=window.updated_after,
                    updated_before=window.updated_before,
                    page=page,
                )
                if result is None:
                    raise PermanentError(f"No installed plugin pulls orders for channel kind {window.channel.kind!r}")
                listed = list(result.orders)
                to_fetch = in_transaction(
                    partial(channel_sync.versions_to_fetch, channel_code=window.channel.code, payloads=listed)
                )
                payloads = complete_payloads(window.channel, listed, to_fetch, listed_at)
                done = in_transaction(
                    partial(
                        channel_sync.store_page,
                        window=window,
                        payloads=payloads,
                        next_page=result.next_page,
                        lease=lease,
                    )
                )
                pages, orders, page = pages + 1, orders + len(payloads), result.next_page
                if done:
                    break
    except channel_sync.LeaseLost:
        log.warning("channel pull taken over by another worker", channel=window.channel.code)
        return
    except RetryableError as error:
        problem = f"Will retry: {error}"
        in_transaction(lambda session: channel_sync.pull_failed(session, window, problem))
        log.warning("channel pull will be retried", channel=window.channel.code, page=page, error=str(error))
        raise _retry(error) from error
    except (PermanentError, PayloadError) as error:
        problem = str(error)

        async def park(session: Any) -> None:
            await channel_sync.pull_failed(session, window, problem, restart_window=True)
            await raise_alert(session, SYNC_FAILED, f"Pulling orders from {window.channel.code} failed: {problem}")

        in_transaction(park)
        log.error("channel pull failed", channel=window.channel.code, error=str(error))
        return
    except Exception as error:
        problem = f"Will retry: {error!r}"
        in_transaction(lambda session: channel_sync.pull_failed(session, window, problem))
        raise
    log.info(
        "channel pulled",
        channel=window.channel.code,
        pages=pages,
        orders=orders,
        until=window.updated_before.isoformat(),
    )
    if window.catching_up:
        pull_channel_orders.send(channel_id=channel_id)  # the next window, right away


# --- reconciliation (补单) ----------------------------------------------------

# For a progress bar: ("windows", how many), then ("listed", orders on a page) per page and
# ("window", 1) per window done.
Progress = Callable[[str, int], None]


def reconcile(channel_id: int, since: datetime | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """List the channel's trailing window again and store whatever is missing.

    Shared by the ``reconcile_channel`` job and ``oms channel reconcile``; returns the
    summary kept on the channel (listed / alreadyStored / newlyStored / failed).
    """
    hook = _hook()

    async def begin(session: Any) -> Any:
        channel = await session.get(Channel, channel_id)
        if channel is None:
            raise PermanentError(f"Channel {channel_id} does not exist")
        config = channel_config(channel)
        return reconciliation.begin_reconcile(
            channel,
            config,
            since,
            get_settings().channel_reconcile_hours,
            hook.oms_channel_max_window(channel=config),
            hook.oms_channel_min_lag(channel=config),
        )

    run = in_transaction(begin)
    if progress is not None:
        progress("windows", len(run.windows))
    for after, before in run.windows:
        page: str | None = None
        while True:
            listed_at = utcnow()
            result = hook.oms_channel_fetch_orders(
                channel=run.channel, updated_after=after, updated_before=before, page=page
            )
            if result is None:
                raise PermanentError(f"No installed plugin pulls orders for channel kind {run.channel.kind!r}")
            listed = list(result.orders)
            missing = in_transaction(partial(reconciliation.unstored, run=run, listed=listed))
            payloads = complete_payloads(
                run.channel, missing, [payload for payload in missing if payload.partial], listed_at
            )
            in_transaction(partial(reconciliation.store_missing, run=run, payloads=payloads, parse=parse_order))
            if progress is not None:
                progress("listed", len(listed))
            page = result.next_page
            if not page:
                break
        if progress is not None:
            progress("window", 1)
    summary = in_transaction(lambda session: reconciliation.finish_reconcile(session, run))
    log.info("channel reconciled", channel=run.channel.code, **{k: v for k, v in summary.items() if k != "finishedAt"})
    return summary


@dramatiq.actor(queue_name="channels", max_retries=10, max_backoff=10 * 60 * 1000)
def reconcile_channel(channel_id: int, since: str | None = None) -> None:
    """The periodic (or asked-for) reconciliation of one channel."""
    try:
        reconcile(channel_id, datetime.fromisoformat(since) if since else None)
    except RetryableError as error:
        raise _retry(error) from error
    except (PermanentError, PayloadError, DomainError) as error:
        problem = str(error)

        async def park(session: Any) -> None:
            await channel_sync.note_channel_error(session, channel_id, f"Reconciliation failed: {problem}")
            await raise_alert(session, SYNC_FAILED, f"Reconciling channel {channel_id} failed: {problem}")

        in_transaction(park)


async def _config_of(session: Any, channel_id: int) -> Any:
    channel = await session.get(Channel, channel_id)
    return channel_config(channel) if channel is not None and channel.active else None


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
        payloads = _hook().oms_channel_expand_webhook(channel=result.channel, body=result.body)
        if payloads is None:
            error = f"No installed plugin reads webhooks of channel kind {result.channel.kind!r}"
    except RetryableError as exc:
        raise _retry(exc) from exc
    except (PermanentError, PayloadError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a plugin bug: keep the message FAILED, replayable after a fix
        log.exception("webhook expansion failed", message_id=message_id)
        error = f"The plugin failed: {exc!r}"
    in_transaction(lambda session: inbound.finish_webhook(session, message_id, payloads, parse_order, error=error))


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
        results = _hook().oms_channel_push_stock(channel=batch.channel, pushes=batch.pushes)
    except RetryableError as error:
        raise _retry(error) from error
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
        accepted = _hook().oms_channel_confirm_shipment(channel=config, shipment=confirmation)
        error = None if accepted else "the channel did not accept the confirmation"
        if accepted is None:
            error = f"No installed plugin confirms shipments for channel kind {config.kind!r}"
    except RetryableError as exc:
        _refused(shipment_id, config.code, confirmation.external_order_id, str(exc), permanent=False)
        raise _retry(exc) from exc
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


def scheduler_tick(holder: str) -> tuple[list[int], list[int]]:
    """One tick: claim due polls (each by exactly one worker) and re-queue stuck messages."""
    settings = get_settings()
    pulling = {kind.kind for kind in channel_kinds().values() if kind.pulls_orders}
    due = in_transaction(lambda session: channel_sync.claim_due_polls(session, pulling)) if pulling else []
    for channel_id in due:
        pull_channel_orders.send(channel_id=channel_id)
    if pulling and settings.channel_reconcile_seconds > 0:
        every = timedelta(seconds=settings.channel_reconcile_seconds)
        for channel_id in in_transaction(lambda session: channel_sync.claim_due_reconciles(session, pulling, every)):
            reconcile_channel.send(channel_id=channel_id)
    sweep_every = timedelta(seconds=max(settings.channel_tick_seconds, settings.stuck_message_seconds / 5))

    async def sweep(session: Any) -> list[tuple[int, str]]:
        if not await channel_sync.take_lease(session, SWEEP_LEASE, holder, sweep_every):
            return []
        return await channel_sync.stuck_messages(session, timedelta(seconds=settings.stuck_message_seconds))

    stuck = in_transaction(sweep)
    for message_id, kind in stuck:
        if kind == "TRACKING":
            send_job("ingest_tracking_message", {"message_id": message_id})
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
