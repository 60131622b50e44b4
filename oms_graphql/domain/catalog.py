"""Catalog and locations: products (SKUs) and the places stock is kept."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Location, Product
from oms_graphql.domain import limits
from oms_graphql.domain.errors import Duplicate, NotFound, Problems
from oms_graphql.domain.money import is_currency
from oms_graphql.domain.orders import AddressDetails, check_address

HANDLING = frozenset({"FRAGILE", "COLD_CHAIN", "OVERSIZE", "HAZMAT"})
LOCATION_KINDS = frozenset({"WAREHOUSE", "STORE", "SUPPLIER"})


@dataclass(frozen=True)
class ProductDetails:
    """Fields of a product; None means "not given" (left unchanged on update)."""

    sku: str | None = None
    name: str | None = None
    price_amount: Decimal | None = None
    price_currency: str | None = None
    category: str | None = None
    weight_grams: int | None = None
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    handling: list[str] | None = None
    drop_ship: bool | None = None


def _check_product(details: ProductDetails, creating: bool) -> None:
    problems = Problems()
    # On update a field left out is None; one sent blank is refused like a blank one on create.
    problems.text(("sku",), details.sku, 64, required=creating or details.sku is not None)
    if details.sku and any(ch.isspace() for ch in details.sku):
        problems.add(("sku",), "sku must not contain spaces.")
    problems.text(("name",), details.name, 200, required=creating or details.name is not None)
    problems.text(("category",), details.category, 100)
    if details.price_amount is not None:
        problems.not_negative(("price", "amount"), details.price_amount)
        limits.check_amount(
            problems, ("price", "amount"), details.price_amount, details.price_currency, unit_price=True
        )
        if not is_currency(details.price_currency):
            problems.add(("price", "currency"), "currency must be an ISO 4217 code such as CNY.")
    for name in ("weightGrams", "lengthMm", "widthMm", "heightMm"):
        attribute = {
            "weightGrams": "weight_grams",
            "lengthMm": "length_mm",
            "widthMm": "width_mm",
            "heightMm": "height_mm",
        }[name]
        problems.positive((name,), getattr(details, attribute))
        most = limits.MAX_WEIGHT_GRAMS if name == "weightGrams" else limits.MAX_LENGTH_MM
        limits.check_units(problems, (name,), getattr(details, attribute), most)
    problems.raise_if_any()


def _given(details: Any) -> dict[str, Any]:
    return {f.name: getattr(details, f.name) for f in fields(details) if getattr(details, f.name) is not None}


async def create_product(session: AsyncSession, details: ProductDetails) -> Product:
    _check_product(details, creating=True)
    if await session.scalar(select(Product.id).where(Product.sku == details.sku)):
        raise Duplicate(f"A product with SKU {details.sku!r} already exists.", ("sku",))
    product = Product(**{**_given(details), "handling": details.handling or []})
    session.add(product)
    await session.flush()
    return product


async def update_product(session: AsyncSession, product: Product, details: ProductDetails) -> Product:
    _check_product(details, creating=False)
    if (
        details.sku
        and details.sku != product.sku
        and await session.scalar(select(Product.id).where(Product.sku == details.sku))
    ):
        raise Duplicate(f"A product with SKU {details.sku!r} already exists.", ("sku",))
    for key, value in _given(details).items():
        setattr(product, key, value)
    await session.flush()
    return product


@dataclass(frozen=True)
class LocationDetails:
    code: str | None = None
    name: str | None = None
    kind: str | None = None
    address: AddressDetails | None = None
    priority: int | None = None
    can_ship: bool | None = None
    can_pickup: bool | None = None
    regions_served: list[str] | None = None
    active: bool | None = None
    auto_dispatch: bool | None = None


def _check_location(details: LocationDetails, creating: bool) -> None:
    problems = Problems()
    problems.text(("code",), details.code, 64, required=creating or details.code is not None)
    problems.text(("name",), details.name, 200, required=creating or details.name is not None)
    if details.kind is not None and details.kind not in LOCATION_KINDS:
        problems.add(("kind",), "kind must be WAREHOUSE, STORE or SUPPLIER.")
    if details.address is not None:
        check_address(problems, ("address",), details.address)
    problems.not_negative(("priority",), details.priority)
    problems.raise_if_any()


def _location_values(details: LocationDetails) -> dict[str, Any]:
    values = {key: value for key, value in _given(details).items() if key != "address"}
    if details.address is not None:
        address = _given(details.address)
        address.pop("name", None)
        address.pop("email", None)
        values.update(address)
        values["country"] = details.address.country.upper()
    return values


async def create_location(session: AsyncSession, details: LocationDetails) -> Location:
    _check_location(details, creating=True)
    if await session.scalar(select(Location.id).where(Location.code == details.code)):
        raise Duplicate(f"A location with code {details.code!r} already exists.", ("code",))
    location = Location(**_location_values(details))
    if details.can_pickup is None:
        location.can_pickup = details.kind == "STORE"
    session.add(location)
    await session.flush()
    return location


async def update_location(session: AsyncSession, location: Location, details: LocationDetails) -> Location:
    _check_location(details, creating=False)
    if (
        details.code
        and details.code != location.code
        and await session.scalar(select(Location.id).where(Location.code == details.code))
    ):
        raise Duplicate(f"A location with code {details.code!r} already exists.", ("code",))
    for key, value in _location_values(details).items():
        setattr(location, key, value)
    await session.flush()
    return location


async def get_by_id(session: AsyncSession, model: type[Any], object_id: int) -> Any:
    found = await session.get(model, object_id)
    if found is None:
        raise NotFound(f"No {model.__name__.lower()} has this id.", ("id",))
    return found
