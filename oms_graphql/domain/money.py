"""Money arithmetic: exact decimals rounded to the currency's minor unit."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not two digits.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3}
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def is_currency(code: str | None) -> bool:
    return bool(code) and bool(_CURRENCY.match(code or ""))


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def from_minor(amount: int, currency: str) -> Decimal:
    """An amount given in minor units (cents) as a Decimal."""
    return Decimal(amount).scaleb(-minor_units(currency))
