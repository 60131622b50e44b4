"""Relay global ids: base64 of ``Type:primary key``."""

from __future__ import annotations

import base64
import binascii

# The largest primary key the database holds (BIGINT on PostgreSQL, INTEGER on SQLite: both
# 64-bit signed). A key past it can name no row, and the driver refuses to even send it.
MAX_DB_ID = 2**63 - 1


def to_global_id(type_name: str, db_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{db_id}".encode()).decode().rstrip("=")


def from_global_id(global_id: str) -> tuple[str, int] | None:
    """``(type name, primary key)``, or None when the id is not one of ours."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        type_name, _, raw = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    # ASCII digits only ("١٢" and "²" are str.isdigit() too), and a key the database can hold.
    if not (type_name and raw.isascii() and raw.isdigit() and len(raw) <= 19):
        return None
    key = int(raw)
    return (type_name, key) if 0 < key <= MAX_DB_ID else None
