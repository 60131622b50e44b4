"""Packing: the parcels a shipment's units travel in, as computed or as a person gives them.

The default packing is a simple first-fit-decreasing by weight: units are taken heaviest
first and each goes into the first parcel it still fits in under the service's weight
limit (a new parcel when none has room). A service without a weight limit takes
everything in one parcel. A parcel's sides are the largest of its units' sides (the
biggest item's box, not a volume calculation), which is what the length limit checks.

A single unit heavier or longer than a service's limit cannot travel with it at all;
an order heavier than one parcel can, in several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oms_graphql.db.models import Product
from oms_graphql.domain.errors import Problems
from oms_graphql.plugins.carrier_contract import CarrierService

MIN_PARCEL_GRAMS = 1  # carriers refuse a weight of 0: an unweighed parcel is declared as 1 g


@dataclass(frozen=True)
class Unit:
    """One unit of a product, as packing sees it."""

    weight_grams: int
    sides_mm: tuple[int, int, int]  # length, width, height (0 when unknown)


@dataclass(frozen=True)
class Package:
    """One parcel of a shipment (``Shipment.packages``)."""

    weight_grams: int
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    tracking_number: str | None = None  # the carrier's number of this parcel (SF child waybills)

    def as_json(self) -> dict[str, int | str | None]:
        return {
            "weightGrams": self.weight_grams,
            "lengthMm": self.length_mm,
            "widthMm": self.width_mm,
            "heightMm": self.height_mm,
            **({"trackingNumber": self.tracking_number} if self.tracking_number else {}),
        }

    @classmethod
    def from_json(cls, value: dict) -> Package:
        return cls(
            weight_grams=int(value.get("weightGrams") or MIN_PARCEL_GRAMS),
            length_mm=value.get("lengthMm"),
            width_mm=value.get("widthMm"),
            height_mm=value.get("heightMm"),
            tracking_number=value.get("trackingNumber"),
        )


def units_of(lines: Sequence[tuple[Product, int]]) -> list[Unit]:
    return [
        Unit(product.weight_grams or 0, (product.length_mm or 0, product.width_mm or 0, product.height_mm or 0))
        for product, count in lines
        for _ in range(max(count, 0))
    ]


def too_big_for(units: Sequence[Unit], service: CarrierService) -> str | None:
    """Why no packing lets ``service`` carry these units (one unit over its limits), or None."""
    heaviest = max((unit.weight_grams for unit in units), default=0)
    if service.max_weight_grams is not None and heaviest > service.max_weight_grams:
        return f"one unit weighs {heaviest / 1000:g} kg, over its {service.max_weight_grams / 1000:g} kg parcel limit"
    longest = max((max(unit.sides_mm) for unit in units), default=0)
    if service.max_length_mm is not None and longest > service.max_length_mm:
        return f"the longest side, {longest} mm, is over its {service.max_length_mm} mm limit"
    return None


def pack(units: Sequence[Unit], max_weight_grams: int | None) -> list[Package]:
    """First-fit decreasing by weight under ``max_weight_grams`` (None: one parcel)."""
    if not units:
        return [Package(MIN_PARCEL_GRAMS)]
    bins: list[list[Unit]] = []
    for unit in sorted(units, key=lambda unit: unit.weight_grams, reverse=True):
        for parcel in bins:
            if max_weight_grams is None or sum(u.weight_grams for u in parcel) + unit.weight_grams <= max_weight_grams:
                parcel.append(unit)
                break
        else:
            bins.append([unit])
    return [_package(parcel) for parcel in bins]


def _package(units: Sequence[Unit]) -> Package:
    sides = [max(unit.sides_mm[axis] for unit in units) for axis in range(3)]
    return Package(
        weight_grams=max(sum(unit.weight_grams for unit in units), MIN_PARCEL_GRAMS),
        length_mm=sides[0] or None,
        width_mm=sides[1] or None,
        height_mm=sides[2] or None,
    )


def check_packages(packages: Sequence[Package], units: Sequence[Unit], service: CarrierService | None) -> None:
    """Packages a person gave: each weighs something, within the service's limits, and together
    they can carry the units (at least their weight, and every unit fits one of them)."""
    problems = Problems()
    if not packages:
        problems.add(("packages",), "Give at least one package, or leave packages out to have them computed.")
    for index, package in enumerate(packages):
        field = ("packages", index)
        if package.weight_grams <= 0:
            problems.add((*field, "weightGrams"), "weightGrams must be more than 0.", "NOT_POSITIVE")
        elif service and service.max_weight_grams is not None and package.weight_grams > service.max_weight_grams:
            problems.add(
                (*field, "weightGrams"),
                f"{package.weight_grams} g is over {service.code}'s {service.max_weight_grams} g parcel limit: "
                "split it into more packages.",
                "TOO_HEAVY",
            )
        for name, side in (
            ("lengthMm", package.length_mm),
            ("widthMm", package.width_mm),
            ("heightMm", package.height_mm),
        ):
            if side is not None and side <= 0:
                problems.add((*field, name), f"{name} must be more than 0 (or left out).", "NOT_POSITIVE")
            elif side is not None and service and service.max_length_mm is not None and side > service.max_length_mm:
                problems.add(
                    (*field, name), f"{side} mm is over {service.code}'s {service.max_length_mm} mm limit.", "TOO_LONG"
                )
    if service and service.max_parcels is not None and len(packages) > service.max_parcels:
        problems.add(
            ("packages",),
            f"{service.code} takes at most {service.max_parcels} parcel(s) per shipment; {len(packages)} were given.",
            "TOO_MANY",
        )
    problems.raise_if_any()
    carried = sum(package.weight_grams for package in packages)
    needed = sum(unit.weight_grams for unit in units)
    if carried < needed:
        problems.add(
            ("packages",),
            f"The packages weigh {carried} g together but the lines weigh {needed} g: "
            "give every package its weight with the goods in it.",
            "CANNOT_CARRY",
        )
    heaviest = max((unit.weight_grams for unit in units), default=0)
    if heaviest > max(package.weight_grams for package in packages):
        problems.add(
            ("packages",), f"One unit weighs {heaviest} g, more than any package given: it fits none.", "CANNOT_CARRY"
        )
    problems.raise_if_any()
