"""How large a quantity or an amount may be, so that every figure can be stored and read back.

GraphQL's ``Int`` is 32-bit (at most 2,147,483,647) and money columns are
NUMERIC(18, 4) on PostgreSQL. A value past either is refused here, before
anything is written, as a field problem naming the input; the database's CHECK
constraints (migration 0007) are the last line behind these checks.

- ``MAX_UNITS``: the most units one movement, order line, transfer line, count,
  buffer or reorder figure may name.
- ``MAX_UNITS_PER_SKU``: the most units of one SKU on hand and in transit over
  all locations together. Every stock figure the API answers (per location, and
  summed over locations as in ``availableToPromise``) is at most this, and the
  gap up to 2,147,483,647 leaves room for concurrent receipts checked at the same
  moment (each at most ``MAX_UNITS``).
- ``MAX_AMOUNT``: the largest money figure (a price, a fee, an order's total), in
  any currency. An amount charged as such (a shipping fee, an order's discount)
  has no more decimal places than its currency's minor unit (2 for CNY and USD,
  0 for JPY, 3 for KWD); a unit price may be finer (a marketplace splits a line's
  price over its units), up to the 4 places the money columns keep. Totals are
  rounded to the minor unit.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import StockLevel
from oms_graphql.domain.errors import DomainError, Problems
from oms_graphql.domain.money import is_currency, minor_units

MAX_UNITS = 100_000_000
MAX_UNITS_PER_SKU = 1_000_000_000
MAX_AMOUNT = Decimal("1000000000000")  # 10^12
MAX_WEIGHT_GRAMS = 10_000_000  # one unit of a product: 10 tonnes
MAX_LENGTH_MM = 100_000  # 100 metres
# Decimal places the money columns keep (NUMERIC(18, 4)), whatever the currency.
STORED_PLACES = 4


class TooMuchStock(DomainError):
    code = "TOO_LARGE"


def check_units(problems: Problems, field: tuple[str | int, ...], quantity: int | None, most: int = MAX_UNITS) -> None:
    """``quantity`` (either sign) is at most ``most``."""
    if quantity is not None and abs(quantity) > most:
        problems.add(field, f"{field[-1]} must be at most {most:,} (got {quantity:,}).", "TOO_LARGE")


def check_amount(
    problems: Problems,
    field: tuple[str | int, ...],
    amount: Decimal | None,
    currency: str | None,
    *,
    unit_price: bool = False,
) -> None:
    """``amount`` is finite, at most ``MAX_AMOUNT`` either side of zero, and in the currency's
    minor unit (``unit_price``: in the 4 places stored)."""
    if amount is None:
        return
    name = field[-1]
    if not amount.is_finite():
        problems.add(field, f"{name} must be a finite number.", "INVALID")
        return
    if abs(amount) > MAX_AMOUNT:
        problems.add(field, f"{name} must be at most {MAX_AMOUNT:,} (got a larger number).", "TOO_LARGE")
        return
    by_currency = not unit_price and currency is not None and is_currency(currency)
    places = minor_units(currency) if by_currency and currency else STORED_PLACES
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        unit = f"{currency} has" if by_currency else "a unit price has"
        problems.add(field, f"{name} has more decimal places than {unit} ({places}).", "TOO_PRECISE")


def check_total(problems: Problems, field: tuple[str | int, ...], amount: Decimal) -> None:
    """A computed figure (an order's subtotal or total) still fits the money columns."""
    if abs(amount) > MAX_AMOUNT:
        problems.add(
            field,
            f"The order comes to more than {MAX_AMOUNT:,}: split it, or check the quantities and prices.",
            "TOO_LARGE",
        )


async def check_room_for(session: AsyncSession, product_id: int, sku: str, growth: int, field: tuple[str, ...]) -> None:
    """Raise TooMuchStock when ``growth`` more units of a SKU would pass ``MAX_UNITS_PER_SKU``."""
    if growth <= 0:
        return
    held = await session.scalar(
        select(func.coalesce(func.sum(StockLevel.on_hand + StockLevel.in_transit), 0)).where(
            StockLevel.product_id == product_id
        )
    )
    if int(held or 0) + growth > MAX_UNITS_PER_SKU:
        raise TooMuchStock(
            f"{sku} would have more than {MAX_UNITS_PER_SKU:,} units on hand and in transit "
            f"({int(held or 0):,} now). Check the quantity.",
            field,
        )
