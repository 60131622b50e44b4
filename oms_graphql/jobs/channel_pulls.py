"""Pulling orders from channels: the incremental pull and the reconciliation (补单).

Both walk a channel's list API window by window and page by page, calling the
plugin between short transactions (never inside one). A pull keeps its progress
with every page it stores and holds a lease its process renews while it runs;
a reconciliation lists a trailing window again and stores what is missing.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import dramatiq
import structlog

from oms_graphql.config import get_settings
from oms_graphql.db.models import Channel, utcnow
from oms_graphql.domain import channel_sync, reconciliation
from oms_graphql.domain.channels import channel_config, raise_alert
from oms_graphql.domain.errors import DomainError
from oms_graphql.jobs.channels import SYNC_FAILED, as_retry, parse_order, plugin_hook
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.contract import (
    ChannelConfig,
    PayloadError,
    PermanentError,
    RawOrderPayload,
    RetryableError,
)

log = structlog.get_logger(__name__)
# Detail calls of one page in flight at once (well under every channel's concurrency limits).
FETCH_THREADS = 8


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
    summary itself is never stored: it would read as an order without its address.

    The detail calls of a page go out side by side (``FETCH_THREADS``): one after the other,
    a page of 100 Taobao orders waits for 100 round trips, and a burst's pull is that slow."""
    complete = [replace(payload, fetched_at=listed_at) for payload in payloads if not payload.partial]

    def fetch(summary: RawOrderPayload) -> RawOrderPayload:
        asked_at = utcnow()
        full = plugin_hook().oms_channel_fetch_order(channel=channel, external_id=summary.external_id)
        if full is None:
            raise PermanentError(f"No installed plugin fetches single orders for channel kind {channel.kind!r}")
        return replace(full, fetched_at=asked_at)

    if len(to_fetch) <= 1:
        return complete + [fetch(summary) for summary in to_fetch]
    with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(to_fetch)), thread_name_prefix="fetch-order") as pool:
        return complete + list(pool.map(fetch, to_fetch))


@dramatiq.actor(queue_name="channels", max_retries=30, max_backoff=5 * 60 * 1000)
def pull_channel_orders(channel_id: int) -> None:
    """Pull the channel's changed orders, one window at a time, resuming where the last try stopped."""
    config = in_transaction(lambda session: _config_of(session, channel_id))
    if config is None:
        return
    hook = plugin_hook()
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
        raise as_retry(error) from error
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
    hook = plugin_hook()

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
        raise as_retry(error) from error
    except (PermanentError, PayloadError, DomainError) as error:
        problem = str(error)

        async def park(session: Any) -> None:
            await channel_sync.note_channel_error(session, channel_id, f"Reconciliation failed: {problem}")
            await raise_alert(session, SYNC_FAILED, f"Reconciling channel {channel_id} failed: {problem}")

        in_transaction(park)


async def _config_of(session: Any, channel_id: int) -> Any:
    channel = await session.get(Channel, channel_id)
    return channel_config(channel) if channel is not None and channel.active else None
