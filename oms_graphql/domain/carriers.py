"""Carriers: configured carrier accounts, their checked settings and their services.

A carrier's ``kind`` names the plugin that speaks to it (``sf``, ``easypost``,
``kuaidi100``, ``pickup``, ``fleet``…). Its settings are checked, and its secrets
encrypted and write-only, exactly as a channel's (:mod:`plugin_settings`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Carrier, utcnow
from oms_graphql.domain.errors import Duplicate, NotFound, Problems
from oms_graphql.domain.plugin_settings import (
    SecretsUnreadable,
    check_settings,
    decrypt_secrets,
    encrypt_secrets,
    split_secrets,
)
from oms_graphql.plugins.carrier_contract import CarrierConfig, CarrierKind, CarrierService
from oms_graphql.plugins.host import carrier_kinds, plugin_manager

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def carrier_kind(kind: str, field: tuple[str, ...] = ("kind",)) -> CarrierKind:
    kinds = carrier_kinds()
    if kind not in kinds:
        raise NotFound(
            f"No installed plugin provides the carrier kind {kind!r}. Installed kinds: "
            f"{', '.join(sorted(kinds)) or 'none'}. Install the plugin (pip install …) and restart.",
            field,
        )
    return kinds[kind]


def _checked(kind: CarrierKind, settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    checked = check_settings(kind, settings, plugin_manager().hook.oms_carrier_check_settings, noun="carriers")
    return split_secrets(kind, checked)


def carrier_config(carrier: Carrier) -> CarrierConfig:
    """The carrier as its plugin sees it, with the credentials decrypted."""
    return CarrierConfig(
        code=carrier.code,
        kind=carrier.kind,
        settings={**(carrier.settings or {}), **decrypt_secrets(carrier.secrets_encrypted)},
    )


def services_of(carrier: Carrier) -> list[CarrierService]:
    """The services the carrier's plugin describes (no I/O)."""
    try:
        config = carrier_config(carrier)
    except SecretsUnreadable:
        return []
    return list(plugin_manager().hook.oms_carrier_services(carrier=config) or [])


async def carrier_by_code(session: AsyncSession, code: str, field: tuple[str, ...] = ("carrierCode",)) -> Carrier:
    carrier = await session.scalar(select(Carrier).where(Carrier.code == code))
    if carrier is None:
        raise NotFound(f"No carrier has code {code!r}. Create it with carrierCreate first.", field)
    return carrier


@dataclass(frozen=True)
class CarrierSpec:
    code: str
    name: str
    kind: str
    settings: Any
    active: bool | None = None


async def create_carrier(session: AsyncSession, spec: CarrierSpec) -> Carrier:
    problems = Problems()
    if not _CODE.match(spec.code or ""):
        problems.add(("code",), "code must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    problems.text(("name",), spec.name, 200, required=True)
    problems.raise_if_any()
    kind = carrier_kind(spec.kind)
    public, secret = _checked(kind, spec.settings if spec.settings is not None else {})
    if await session.scalar(select(Carrier.id).where(Carrier.code == spec.code)) is not None:
        raise Duplicate(f"A carrier with code {spec.code!r} exists already; change it with carrierUpdate.", ("code",))
    carrier = Carrier(
        code=spec.code,
        name=spec.name,
        kind=kind.kind,
        settings=public,
        secrets_encrypted=encrypt_secrets(secret),
        active=True if spec.active is None else spec.active,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(carrier)
            await session.flush()
    except IntegrityError:
        raise Duplicate(f"A carrier with code {spec.code!r} exists already.", ("code",)) from None
    return carrier


@dataclass(frozen=True)
class CarrierChanges:
    name: str | None = None
    settings: Any = None  # keys given replace the stored ones; a key set to null is removed
    active: bool | None = None


async def update_carrier(session: AsyncSession, carrier: Carrier, changes: CarrierChanges) -> Carrier:
    problems = Problems()
    if changes.name is not None:
        problems.text(("name",), changes.name, 200, required=True)
    if changes.settings is not None and not isinstance(changes.settings, dict):
        problems.add(("settings",), "settings must be a JSON object of the keys to change.")
    problems.raise_if_any()
    if changes.settings is not None:
        current = {**(carrier.settings or {}), **decrypt_secrets(carrier.secrets_encrypted)}
        for key, value in changes.settings.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        public, secret = _checked(carrier_kind(carrier.kind), current)
        carrier.settings = public
        carrier.secrets_encrypted = encrypt_secrets(secret)
    if changes.name is not None:
        carrier.name = changes.name
    if changes.active is not None:
        carrier.active = changes.active
    await session.flush()
    return carrier
