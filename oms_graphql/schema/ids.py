"""Relay global ids: base64 of ``Type:primary key``."""

from __future__ import annotations

import base64
import binascii


def to_global_id(type_name: str, db_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{db_id}".encode()).decode().rstrip("=")


def from_global_id(global_id: str) -> tuple[str, int] | None:
    """``(type name, primary key)``, or None when the id is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return (type_name, int(raw)) if type_name and raw.isdigit() else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
