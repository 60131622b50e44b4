"""Sales channels: configuration, encrypted credentials and SKU listings.

A channel's ``settings`` are defined by its plugin and checked, and its secrets
encrypted, as :mod:`oms_graphql.domain.plugin_settings` describes
(``oms_channel_check_settings`` is the plugin's own check). A plugin receives
the secrets decrypted in ``ChannelConfig``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql import redaction
from oms_graphql.db.models import AlertRecord, Channel, ChannelListing, Product, utcnow
from oms_graphql.domain import limits
from oms_graphql.domain.errors import Duplicate, NotFound, Problems
from oms_graphql.domain.inventory import product_by_sku
from oms_graphql.domain.low_stock import NOTIFY_JOB, alert_payload
from oms_graphql.domain.plugin_settings import check_settings as check_plugin_settings
from oms_graphql.domain.plugin_settings import (
    decrypt_secrets,
    encrypt_secrets,
    split_secrets,
)
from oms_graphql.events.outbox import record_event, request_job
from oms_graphql.plugins.contract import ChannelConfig, ChannelKind
from oms_graphql.plugins.host import channel_kinds, plugin_manager

DEFAULT_SYNC_BACK = timedelta(hours=72)
DEFAULT_POLL_SECONDS = 300
MIN_POLL_SECONDS = 5
MAX_POLL_SECONDS = 7 * 24 * 3600
PULL_JOB = "pull_channel_orders"
PUSH_JOB = "push_channel_stock"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# --- describing and checking settings --------------------------------------


def kind_of(kind: str, field: tuple[str, ...] = ("kind",)) -> ChannelKind:
    kinds = channel_kinds()
    if kind not in kinds:
        raise NotFound(
            f"No installed plugin provides the channel kind {kind!r}. Installed kinds: {', '.join(sorted(kinds))}. "
            "Install the plugin (pip install …) and restart.",
            field,
        )
    return kinds[kind]


def check_settings(kind: ChannelKind, settings: Any) -> dict[str, Any]:
    """A channel's settings checked (generic checks, then the plugin's), defaults filled in."""
    return check_plugin_settings(kind, settings, plugin_manager().hook.oms_channel_check_settings)


def channel_config(channel: Channel) -> ChannelConfig:
    """The channel as its plugin sees it, with the credentials decrypted."""
    return ChannelConfig(
        code=channel.code,
        kind=channel.kind,
        settings={**(channel.settings or {}), **decrypt_secrets(channel.secrets_encrypted)},
    )


# --- creating and changing channels ----------------------------------------


@dataclass(frozen=True)
class ChannelSpec:
    code: str
    name: str
    kind: str
    settings: Any
    stock_share_percent: int | None = None
    stock_buffer: int | None = None
    poll_interval_seconds: int | None = None
    sync_from: datetime | None = None
    active: bool | None = None


def _check_numbers(problems: Problems, spec: ChannelSpec) -> None:
    if spec.stock_share_percent is not None and not 0 <= spec.stock_share_percent <= 100:
        problems.add(("stockSharePercent",), "stockSharePercent must be between 0 and 100.")
    problems.not_negative(("stockBuffer",), spec.stock_buffer)
    limits.check_units(problems, ("stockBuffer",), spec.stock_buffer)
    if (
        spec.poll_interval_seconds is not None
        and not MIN_POLL_SECONDS <= spec.poll_interval_seconds <= MAX_POLL_SECONDS
    ):
        problems.add(
            ("pollIntervalSeconds",),
            f"pollIntervalSeconds must be between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS} (a week).",
        )
    if spec.sync_from is not None and spec.sync_from > utcnow() + timedelta(minutes=5):
        problems.add(("syncFrom",), "syncFrom must not be in the future.")
    problems.text(("name",), spec.name, 200, required=spec.name is not None)


async def create_channel(session: AsyncSession, spec: ChannelSpec) -> Channel:
    problems = Problems()
    if not _CODE.match(spec.code or ""):
        problems.add(("code",), "code must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    _check_numbers(problems, spec)
    problems.raise_if_any()
    kind = kind_of(spec.kind)
    settings = check_settings(kind, spec.settings if spec.settings is not None else {})
    public, secret = split_secrets(kind, settings)
    if await session.scalar(select(Channel.id).where(Channel.code == spec.code)) is not None:
        raise Duplicate(f"A channel with code {spec.code!r} exists already; change it with channelUpdate.", ("code",))
    now = utcnow()
    channel = Channel(
        code=spec.code,
        name=spec.name,
        kind=kind.kind,
        settings=public,
        secrets_encrypted=encrypt_secrets(secret),
        stock_share_percent=100 if spec.stock_share_percent is None else spec.stock_share_percent,
        stock_buffer=spec.stock_buffer or 0,
        poll_interval_seconds=spec.poll_interval_seconds or DEFAULT_POLL_SECONDS,
        sync_from=spec.sync_from or now - DEFAULT_SYNC_BACK,
        active=True if spec.active is None else spec.active,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(channel)
            await session.flush()
    except IntegrityError:
        raise Duplicate(f"A channel with code {spec.code!r} exists already.", ("code",)) from None
    return channel


@dataclass(frozen=True)
class ChannelChanges:
    name: str | None = None
    settings: Any = None  # keys given replace the stored ones; a key set to null is removed
    stock_share_percent: int | None = None
    stock_buffer: int | None = None
    poll_interval_seconds: int | None = None
    sync_from: datetime | None = None
    active: bool | None = None


async def update_channel(session: AsyncSession, channel: Channel, changes: ChannelChanges) -> Channel:
    problems = Problems()
    spec = ChannelSpec(
        code=channel.code,
        name=changes.name if changes.name is not None else channel.name,
        kind=channel.kind,
        settings=None,
        stock_share_percent=changes.stock_share_percent,
        stock_buffer=changes.stock_buffer,
        poll_interval_seconds=changes.poll_interval_seconds,
        sync_from=changes.sync_from,
    )
    _check_numbers(problems, spec)
    problems.raise_if_any()
    if changes.settings is not None:
        if not isinstance(changes.settings, dict):
            problems.add(("settings",), "settings must be a JSON object of the keys to change.")
            problems.raise_if_any()
        kind = kind_of(channel.kind)
        current = {**(channel.settings or {}), **decrypt_secrets(channel.secrets_encrypted)}
        for key, value in changes.settings.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        public, secret = split_secrets(kind, check_settings(kind, current))
        channel.settings = public
        channel.secrets_encrypted = encrypt_secrets(secret)
    if changes.name is not None:
        channel.name = changes.name
    if changes.stock_share_percent is not None:
        channel.stock_share_percent = changes.stock_share_percent
    if changes.stock_buffer is not None:
        channel.stock_buffer = changes.stock_buffer
    if changes.poll_interval_seconds is not None:
        channel.poll_interval_seconds = changes.poll_interval_seconds
    if changes.sync_from is not None:
        # Re-import from there on the next pull (orders already known are updated, never duplicated).
        channel.sync_from = changes.sync_from
        channel.sync_cursor = None
    if changes.active is not None:
        channel.active = changes.active
    if changes.stock_share_percent is not None or changes.stock_buffer is not None:
        # What the channel may sell changed for every listing: tell it now.
        await request_stock_push(session, channel)
    await session.flush()
    return channel


async def request_pull(session: AsyncSession, channel: Channel) -> None:
    """Pull the channel's changed orders now (the scheduler polls anyway)."""
    if not kind_of(channel.kind).pulls_orders:
        raise NotFound(f"{channel.kind} channels do not pull orders.", ("channelCode",))
    request_job(session, PULL_JOB, channel_id=channel.id)


async def request_stock_push(session: AsyncSession, channel: Channel) -> int:
    """Push every listing's sellable quantity to the channel now; returns how many listings."""
    count = await mark_all_listings_for_push(session, channel)
    request_job(session, PUSH_JOB, channel_id=channel.id)
    return count


# --- listings ---------------------------------------------------------------


async def set_listing(
    session: AsyncSession, channel: Channel, channel_sku_id: str, sku: str, channel_item_id: str | None = None
) -> tuple[ChannelListing, Product]:
    """Map the channel's SKU id to our SKU (create or change the listing)."""
    problems = Problems()
    problems.text(("channelSkuId",), channel_sku_id, 100, required=True)
    problems.text(("channelItemId",), channel_item_id, 100)
    problems.raise_if_any()
    product = await product_by_sku(session, sku)
    listing = await session.scalar(
        select(ChannelListing).where(
            ChannelListing.channel_id == channel.id, ChannelListing.channel_sku_id == channel_sku_id
        )
    )
    if listing is None:
        listing = ChannelListing(channel_id=channel.id, channel_sku_id=channel_sku_id, product_id=product.id)
        session.add(listing)
    listing.product_id = product.id
    if channel_item_id is not None:
        listing.channel_item_id = channel_item_id
    listing.push_requested_at = utcnow()  # tell the channel the quantity of what it now sells
    request_job(session, PUSH_JOB, channel_id=channel.id)
    await session.flush()
    return listing, product


async def mark_all_listings_for_push(session: AsyncSession, channel: Channel) -> int:
    listings = (await session.scalars(select(ChannelListing).where(ChannelListing.channel_id == channel.id))).all()
    now = utcnow()
    for listing in listings:
        listing.push_requested_at = now
    return len(listings)


# --- alerts -----------------------------------------------------------------


async def raise_alert(session: AsyncSession, kind: str, message: str, sku: str | None = None) -> AlertRecord:
    """An alert for people (SYNC_FAILED, SHIPMENT_CONFIRMATION_FAILED, …): stored, published, notified."""
    alert = AlertRecord(kind=kind, sku=sku, message=redaction.redact(message)[:1000], created_at=utcnow())
    session.add(alert)
    await session.flush()
    record_event(session, "alert", alert_payload(alert))
    request_job(session, NOTIFY_JOB, alert_id=alert.id)
    return alert
