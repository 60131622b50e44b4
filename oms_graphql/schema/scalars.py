"""Custom scalars: Decimal as a string (never a float), JSON."""

from __future__ import annotations

from decimal import Decimal as PyDecimal
from decimal import InvalidOperation
from typing import NewType

import strawberry
from strawberry.scalars import JSON

__all__ = ["DECIMAL_SCALAR", "JSON", "Decimal"]


def _parse_decimal(value: object) -> PyDecimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError('Decimal values are sent as strings, e.g. "99.50".')
    try:
        parsed = PyDecimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"{value!r} is not a decimal number.") from error
    if not parsed.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal number.")
    return parsed


Decimal = NewType("Decimal", PyDecimal)

DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number sent as a string: "99.50".',
    serialize=lambda value: format(PyDecimal(value), "f"),
    parse_value=_parse_decimal,
)
