"""Custom scalars: Decimal as a string (never a float), DateTime with its offset, JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as PyDecimal
from decimal import InvalidOperation
from typing import NewType

import strawberry
from strawberry.scalars import JSON

__all__ = ["DATETIME_SCALAR", "DECIMAL_SCALAR", "EARLIEST", "JSON", "LATEST", "Decimal"]

# Longer than any amount or quantity the OMS takes (see domain/limits.py): a longer string is
# refused before Decimal() spends time on a 100,000-digit number.
_MAX_DECIMAL_TEXT = 40

# Times the OMS accepts: wide enough for any order's history and any promise, narrow enough
# that converting to UTC or adding days to one can never leave Python's (or the database's) range.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _parse_decimal(value: object) -> PyDecimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('Decimal values are sent as strings, e.g. "99.50".')
    text = str(value).strip()
    if len(text) > _MAX_DECIMAL_TEXT:
        raise ValueError(f"A decimal number has at most {_MAX_DECIMAL_TEXT} characters.")
    try:
        parsed = PyDecimal(text)
    except InvalidOperation as error:
        raise ValueError(f"{text!r} is not a decimal number.") from error
    if not parsed.is_finite():
        raise ValueError(f"{text!r} is not a finite decimal number.")
    return parsed


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError('DateTime values are ISO-8601 strings with an offset, e.g. "2025-03-14T08:00:00Z".')
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f'{value[:40]!r} is not an ISO-8601 date and time, e.g. "2025-03-14T08:00:00Z".') from error
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"{value[:40]!r} has no UTC offset (time zone): add one (Z for UTC, or e.g. +08:00), "
            "so the time is not guessed."
        )
    try:
        moment = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise ValueError(f"{value[:40]!r} is out of range: times must fall in the years 1900 to 2999.")
    return moment


Decimal = NewType("Decimal", PyDecimal)

DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number sent as a string: "99.50".',
    serialize=lambda value: format(PyDecimal(value), "f"),
    parse_value=_parse_decimal,
)

DATETIME_SCALAR = strawberry.scalar(
    name="DateTime",
    description=(
        'A date and time in ISO-8601 with its UTC offset: "2025-03-14T08:00:00Z" or '
        '"2025-03-14T16:00:00+08:00". Answers are always in UTC. A time sent without an offset '
        "is refused (never guessed), as is one outside the years 1900 to 2999."
    ),
    serialize=lambda value: value.isoformat(),
    parse_value=_parse_datetime,
)
