"""Inventory inputs (names and fields per API.md, "Inventory: inputs and fields")."""

from __future__ import annotations

import enum

import strawberry

from oms_graphql.domain.replenishment import ReorderPolicy
from oms_graphql.domain.transfers import TransferLineRequest


@strawberry.input(description="A cycle count: the quantity found on the shelf.")
class StockCountInput:
    sku: str
    location_code: str
    counted_quantity: int = strawberry.field(description="Units counted; the difference to on hand is booked.")
    reason: str | None = strawberry.field(default=None, description="Why or by whom, e.g. 'weekly cycle count'.")


@strawberry.input(description="Reorder policy of one SKU at one location; omitted figures stay as they are.")
class ReorderPolicySetInput:
    sku: str
    location_code: str
    safety_stock: int | None = strawberry.field(default=None, description="Units never promised to orders.")
    reorder_point: int | None = strawberry.field(
        default=None, description="A low-stock alert is raised when available falls below this."
    )
    reorder_quantity: int | None = strawberry.field(default=None, description="Minimum purchase quantity.")
    lead_time_days: int | None = strawberry.field(default=None, description="Supplier lead time in days.")

    def to_domain(self) -> ReorderPolicy:
        return ReorderPolicy(
            safety_stock=self.safety_stock,
            reorder_point=self.reorder_point,
            reorder_quantity=self.reorder_quantity,
            lead_time_days=self.lead_time_days,
        )


@strawberry.input(description="Units of one SKU on a transfer (or received from one).")
class TransferLineInput:
    sku: str
    quantity: int

    def to_domain(self) -> TransferLineRequest:
        return TransferLineRequest(sku=self.sku, quantity=self.quantity)


@strawberry.input(description="A transfer between two locations; it starts as a DRAFT.")
class TransferCreateInput:
    from_location_code: str
    to_location_code: str
    lines: list[TransferLineInput]
    reference: str | None = None


@strawberry.input(description="Ship a DRAFT transfer: stock leaves the source and is in transit.")
class TransferShipInput:
    id: strawberry.ID


@strawberry.input(description="Book what arrived of a shipped transfer; partial receipts are allowed.")
class TransferReceiveInput:
    id: strawberry.ID
    lines: list[TransferLineInput] | None = strawberry.field(
        default=None, description="What arrived; omit when everything still expected arrived."
    )
    close: bool = strawberry.field(
        default=False,
        description="Nothing more will arrive: write off what is still missing and record the discrepancy.",
    )


@strawberry.input(description="Which SKUs and locations to even out.")
class TransferSuggestInput:
    skus: list[str] | None = strawberry.field(default=None, description="Default: every SKU with stock.")
    location_codes: list[str] | None = strawberry.field(
        default=None, description="Default: every active warehouse and store."
    )
    sales_window_days: int = strawberry.field(default=28, description="Recent sales are counted over these days.")
    create: bool = strawberry.field(
        default=False, description="Also create one DRAFT transfer per source and destination pair."
    )


@strawberry.enum(description="Where a transfer is.")
class TransferStatus(enum.Enum):
    DRAFT = "DRAFT"
    SHIPPED = "SHIPPED"
    PARTIALLY_RECEIVED = "PARTIALLY_RECEIVED"
    RECEIVED = "RECEIVED"


@strawberry.input(description="Filter transfers.")
class TransferFilter:
    status: list[TransferStatus] | None = None
    from_location_code: str | None = None
    to_location_code: str | None = None
    sku: str | None = strawberry.field(default=None, description="Transfers with a line of this SKU.")


@strawberry.input(description="Filter the alerts list.")
class AlertFilter:
    kind: str | None = strawberry.field(default=None, description="LOW_STOCK, ...")
    sku: str | None = None
    open: bool | None = strawberry.field(default=None, description="true: only unresolved alerts.")
