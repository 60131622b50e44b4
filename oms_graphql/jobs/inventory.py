"""Inventory jobs: delivering alerts to notifier plugins, and the debounced stock-change hook.

Alerts: ``notify_alert(alert_id)`` fans out to one job per notifier plugin, so a
webhook that is down is retried on its own without logging the alert twice.

Stock changes: the ledger asks for ``stock_changed(product_id)`` once per
burst (the first movement after the last push). The job waits out the
debounce window, then sends one ``channel_stock_changed`` job per active
channel, each of which calls ``oms_stock_changed`` with the figures as they
are then. When it is done it marks the levels pushed; if more movements came
in meanwhile, it schedules itself again.
"""

from __future__ import annotations

import dramatiq
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import AlertRecord, Channel, Product, StockLevel
from oms_graphql.domain.availability import available_for_product
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.contract import Alert, PermanentError, RetryableError
from oms_graphql.plugins.host import plugin_manager

log = structlog.get_logger(__name__)

# Seconds between the first change of a SKU and the push to channels; changes
# within the window are pushed together. Marketplaces throttle stock updates.
DEBOUNCE_SECONDS = 3.0


# --- alerts -----------------------------------------------------------------


def _notifier_names() -> list[str]:
    manager = plugin_manager()
    return sorted(
        name
        for name, plugin in manager.list_name_plugin()
        if plugin is not None and any(impl.plugin is plugin for impl in manager.hook.oms_notify.get_hookimpls())
    )


@dramatiq.actor(queue_name="alerts", max_retries=12)
def notify_alert(alert_id: int, plugin: str | None = None) -> None:
    """Deliver one alert: without ``plugin``, fan out to one job per notifier plugin."""
    if plugin is None:
        for name in _notifier_names():
            notify_alert.send(alert_id=alert_id, plugin=name)
        return
    record = in_transaction(lambda session: session.get(AlertRecord, alert_id))
    if record is None:
        log.warning("alert vanished before delivery", alert_id=alert_id)
        return
    alert = Alert(
        kind=record.kind,
        message=record.message,
        sku=record.sku,
        location_code=record.location_code,
        suggested_quantity=record.suggested_quantity,
        created_at=record.created_at,
        data={"id": record.id},
    )
    manager = plugin_manager()
    target = manager.get_plugin(plugin)
    if target is None:
        log.warning("notifier plugin no longer installed", plugin=plugin, alert_id=alert_id)
        return
    others = [p for name, p in manager.list_name_plugin() if name != plugin and p is not None]
    try:
        manager.subset_hook_caller("oms_notify", remove_plugins=others)(alert=alert)
    except PermanentError as error:
        log.error("notifier refused the alert; giving up", plugin=plugin, alert_id=alert_id, error=str(error))
    except RetryableError as error:
        log.warning("notifier failed; will retry", plugin=plugin, alert_id=alert_id, error=str(error))
        raise


# --- stock changes ----------------------------------------------------------


async def _dirty_versions(session: AsyncSession, product_id: int) -> dict[int, int]:
    rows = await session.execute(
        select(StockLevel.id, StockLevel.sync_version).where(
            StockLevel.product_id == product_id, StockLevel.sync_version != StockLevel.synced_version
        )
    )
    return {int(level): int(version) for level, version in rows}


async def _mark_pushed(session: AsyncSession, versions: dict[int, int]) -> bool:
    """Record what was pushed; True when a level changed again meanwhile."""
    changed_again = False
    for level, version in versions.items():
        current = await session.scalar(
            update(StockLevel)
            .where(StockLevel.id == level)
            .values(synced_version=version)
            .returning(StockLevel.sync_version)
            .execution_options(synchronize_session=False)
        )
        changed_again = changed_again or (current is not None and int(current) != version)
    return changed_again


async def _active_channels(session: AsyncSession) -> list[int]:
    rows = await session.scalars(
        select(Channel.id).where(Channel.active.is_(True), Channel.kind != "manual").order_by(Channel.id)
    )
    return list(rows.all())


@dramatiq.actor(queue_name="stock", max_retries=10)
def stock_changed(product_id: int, settled: bool = False) -> None:
    """Debounce, then tell every channel (one job each) that this SKU's quantity may have changed."""
    if not settled:
        stock_changed.send_with_options(
            kwargs={"product_id": product_id, "settled": True}, delay=int(DEBOUNCE_SECONDS * 1000)
        )
        return
    versions = in_transaction(lambda session: _dirty_versions(session, product_id))
    if not versions:
        return  # another run already pushed this burst
    if plugin_manager().hook.oms_stock_changed.get_hookimpls():
        for channel_id in in_transaction(_active_channels):
            channel_stock_changed.send(channel_id=channel_id, product_id=product_id)
    if in_transaction(lambda session: _mark_pushed(session, versions)):
        # Movements after we read the versions did not ask for a job: we run again.
        stock_changed.send(product_id=product_id)


async def _channel_figures(session: AsyncSession, channel_id: int, product_id: int) -> dict | None:
    channel = await session.get(Channel, channel_id)
    product = await session.get(Product, product_id)
    if channel is None or product is None or not channel.active:
        return None
    atp = await available_for_product(session, product, channel=channel)
    return {
        "channel_code": channel.code,
        "channel_kind": channel.kind,
        "sku": product.sku,
        "quantity": atp.total,
        "locations": {entry.location.code: entry.available for entry in atp.locations},
    }


@dramatiq.actor(queue_name="stock", max_retries=20)
def channel_stock_changed(channel_id: int, product_id: int) -> None:
    """Call ``oms_stock_changed`` for one channel and SKU with the figures as they are now."""
    figures = in_transaction(lambda session: _channel_figures(session, channel_id, product_id))
    if figures is None:
        return
    try:
        plugin_manager().hook.oms_stock_changed(**figures)
    except PermanentError as error:
        log.error("stock change refused by the channel plugin", error=str(error), **figures)
