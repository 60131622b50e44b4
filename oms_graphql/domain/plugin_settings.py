"""Settings of plugin-backed accounts (channels, carriers): checked, and secrets encrypted.

A plugin defines its settings as :class:`~oms_graphql.plugins.contract.SettingField`
s. The OMS checks required keys and value types, then asks the plugin; every
problem comes back as a field problem naming the settings key. Secret fields
(credentials) are kept apart, encrypted with a key derived from
``OMS_SECRET_KEY`` (Fernet: AES-128-CBC + HMAC-SHA256), and never returned by a
query or written to a log. Keys in ``OMS_PREVIOUS_SECRET_KEYS`` still decrypt (MultiFernet),
so a key is rotated without downtime: see ``domain/secret_rotation.py`` and ``oms secrets rotate``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql import redaction
from oms_graphql.config import get_settings
from oms_graphql.db.models import Carrier, Channel
from oms_graphql.domain.errors import Problems
from oms_graphql.plugins.contract import SettingField


class PluginKind(Protocol):
    """A channel or carrier kind: its name and its settings."""

    @property
    def kind(self) -> str: ...

    @property
    def settings(self) -> tuple[SettingField, ...]: ...


PluginCheck = Callable[..., list[tuple[str, str]] | None]


@lru_cache(maxsize=16)
def _fernet(secret_key: str) -> Fernet:
    # HKDF turns any OMS_SECRET_KEY (a passphrase or random bytes) into a 32-byte Fernet key;
    # the info string keeps this key apart from anything else derived from the same secret.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"oms-graphql channel secrets").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def secret_keyring(current: str, previous: tuple[str, ...] = ()) -> MultiFernet:
    """Encrypts with ``current``; decrypts with it or any of ``previous`` (keys being rotated out)."""
    return MultiFernet([_fernet(current), *(_fernet(key) for key in previous if key != current)])


def _keyring() -> MultiFernet:
    settings = get_settings()
    return secret_keyring(settings.secret_key, settings.previous_secret_keys)


def encrypt_secrets(values: dict[str, Any]) -> str | None:
    if not values:
        return None
    redaction.remember(values.values())
    return _keyring().encrypt(json.dumps(values).encode()).decode()


def decrypt_secrets(token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        values = dict(json.loads(_keyring().decrypt(token.encode())))
    except InvalidToken:
        # OMS_SECRET_KEY changed since the secrets were stored: say so, never show them.
        raise SecretsUnreadable(
            "The credentials cannot be decrypted: they were stored under another OMS_SECRET_KEY. Put that key "
            "in OMS_PREVIOUS_SECRET_KEYS, or set the credentials again with channelUpdate (or carrierUpdate)."
        ) from None
    # Whoever reads a secret may print an error that holds it: mask it everywhere from now on.
    redaction.remember(values.values())
    return values


def reencrypt_secrets(token: str) -> str:
    """``token`` encrypted again with the current OMS_SECRET_KEY (it may have been made with a previous key)."""
    try:
        return _keyring().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretsUnreadable(
            "stored under a key that is neither OMS_SECRET_KEY nor one of OMS_PREVIOUS_SECRET_KEYS"
        ) from None


class SecretsUnreadable(RuntimeError):
    pass


def _check_value(problems: Problems, spec: SettingField, value: Any) -> Any:
    path = ("settings", spec.key)
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            problems.add(path, f"settings.{spec.key} ({spec.label}) must be a whole number.")
            return value
        return int(value)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            problems.add(path, f"settings.{spec.key} ({spec.label}) must be true or false.")
        return value
    if spec.kind == "list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            problems.add(path, f"settings.{spec.key} ({spec.label}) must be a list of strings.")
        elif spec.required and not value:
            problems.add(path, f"settings.{spec.key} ({spec.label}) needs at least one value.", "REQUIRED")
        return value
    if not isinstance(value, str):
        problems.add(path, f"settings.{spec.key} ({spec.label}) must be a string.")
        return value
    if spec.kind == "url" and not value.startswith(("http://", "https://")):
        problems.add(path, f"settings.{spec.key} ({spec.label}) must be an http(s) URL.")
    return value


def check_settings(
    kind: PluginKind, settings: Any, plugin_check: PluginCheck, noun: str = "channels"
) -> dict[str, Any]:
    """The settings with defaults filled in; raises InvalidInput naming each bad key.

    ``plugin_check`` is the plugin's own check (``oms_channel_check_settings`` or
    ``oms_carrier_check_settings``), asked once the generic checks pass.
    """
    problems = Problems()
    if not isinstance(settings, dict):
        problems.add(("settings",), "settings must be a JSON object of the plugin's keys.")
        problems.raise_if_any()
    known = {spec.key: spec for spec in kind.settings}
    # A secret given here is masked in every answer and log line from now on, even if it is refused.
    redaction.remember(settings.get(spec.key) for spec in kind.settings if spec.secret)
    checked: dict[str, Any] = {}
    for key in settings:
        if key not in known:
            problems.add(
                ("settings", key),
                f"{key!r} is not a setting of {kind.kind} {noun}. Known keys: {', '.join(known) or 'none'}.",
                "UNKNOWN_SETTING",
            )
    for key, spec in known.items():
        value = settings.get(key)
        if value is None or value == "":
            if spec.required and spec.default is None:
                problems.add(("settings", key), f"settings.{key} ({spec.label}) is required.", "REQUIRED")
            elif spec.default is not None:
                checked[key] = spec.default
            continue
        checked[key] = _check_value(problems, spec, value)
    problems.raise_if_any()
    answer = plugin_check(kind=kind.kind, settings=dict(checked))
    for key, message in answer or ():
        problems.add(("settings", key), f"settings.{key}: {message}")
    problems.raise_if_any()
    return checked


def split_secrets(kind: PluginKind, settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    secret_keys = {spec.key for spec in kind.settings if spec.secret}
    public = {key: value for key, value in settings.items() if key not in secret_keys}
    secret = {key: value for key, value in settings.items() if key in secret_keys}
    return public, secret


def secret_keys_set(secrets_encrypted: str | None) -> list[str]:
    """Which secret settings have a value (their values are never shown); none if unreadable."""
    if not secrets_encrypted:
        return []
    try:
        return sorted(decrypt_secrets(secrets_encrypted))
    except SecretsUnreadable:
        return []


async def remember_configured_secrets(session: AsyncSession) -> int:
    """Have this process mask every channel's and carrier's secrets from the start; how many accounts."""
    accounts = 0
    for model in (Channel, Carrier):
        for stored in (await session.scalars(select(model.secrets_encrypted))).all():
            try:
                decrypt_secrets(stored)  # remembers what it reads
                accounts += 1 if stored else 0
            except SecretsUnreadable:
                continue
    return accounts
