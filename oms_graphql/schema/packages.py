"""GraphQL types of a shipment's parcels (packages)."""

from __future__ import annotations

import strawberry

from oms_graphql.domain.packing import Package as DomainPackage


@strawberry.type(description="One parcel of a shipment: its weight and size, and the carrier's number for it.")
class Package:
    weight_grams: int = strawberry.field(description="What it weighs, goods included.")
    length_mm: int | None = strawberry.field(description="Length, if known.")
    width_mm: int | None = strawberry.field(description="Width, if known.")
    height_mm: int | None = strawberry.field(description="Height, if known.")
    tracking_number: str | None = strawberry.field(
        description="The carrier's number of this parcel, when it numbers each one (SF: the master waybill for "
        "the first, child waybills for the others)."
    )

    @classmethod
    def from_json(cls, entry: dict) -> Package:
        package = DomainPackage.from_json(entry)
        return cls(
            weight_grams=package.weight_grams,
            length_mm=package.length_mm,
            width_mm=package.width_mm,
            height_mm=package.height_mm,
            tracking_number=package.tracking_number,
        )


@strawberry.input(description="One parcel as it was packed.")
class PackageInput:
    weight_grams: int = strawberry.field(description="What it weighs with the goods in it (more than 0).")
    length_mm: int | None = strawberry.field(default=None, description="Length in millimetres.")
    width_mm: int | None = strawberry.field(default=None, description="Width in millimetres.")
    height_mm: int | None = strawberry.field(default=None, description="Height in millimetres.")

    def to_domain(self) -> DomainPackage:
        return DomainPackage(self.weight_grams, self.length_mm, self.width_mm, self.height_mm)
