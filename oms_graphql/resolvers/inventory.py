"""Inventory root fields: available to promise, counts, reorder policy, transfers, live stock, alerts."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import availability, inventory, replenishment, transfers
from oms_graphql.events.pubsub import hub
from oms_graphql.resolvers.common import context, db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.inventory_inputs import (
    AlertFilter,
    ReorderPolicySetInput,
    StockCountInput,
    TransferCreateInput,
    TransferFilter,
    TransferReceiveInput,
    TransferShipInput,
    TransferSuggestInput,
)
from oms_graphql.schema.inventory_types import (
    Alert,
    AvailableToPromise,
    ReorderPolicySetPayload,
    StockCountPayload,
    StockEvent,
    Transfer,
    TransferCreatePayload,
    TransferReceivePayload,
    TransferShipPayload,
    TransferSuggestion,
    TransferSuggestPayload,
)
from oms_graphql.schema.permissions import OPERATE, STAFF, SYNC_READ
from oms_graphql.schema.relay import Connection, paginate
from oms_graphql.schema.types import StockLevel


def _stock_level(row: models.StockLevel, sku: str) -> StockLevel:
    return StockLevel.from_row(row, sku)


async def transfer_node(session: AsyncSession, row: models.Transfer) -> Transfer:
    lines = await transfers.transfer_lines(session, [row.id])
    return Transfer.from_row(row, lines[row.id])


@strawberry.type
class InventoryQuery:
    @strawberry.field(
        description="What may be sold of a SKU now, in total and per location; for a channel, after its share "
        "and buffer. Null for an unknown SKU.",
        permission_classes=SYNC_READ,
    )
    async def available_to_promise(
        self, info: Info, sku: str, channel_code: str | None = None
    ) -> AvailableToPromise | None:
        async with context(info).database.session() as session:
            atp = await availability.available_to_promise(session, sku, channel_code)
        return AvailableToPromise.from_domain(atp) if atp else None

    @strawberry.field(description="Transfers between locations, newest first.", permission_classes=STAFF)
    async def transfers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: TransferFilter | None = None,
    ) -> Connection[Transfer]:
        T = models.Transfer
        query = select(T).order_by(T.id.desc())
        if filter and filter.status:
            query = query.where(T.status.in_([getattr(s, "value", s) for s in filter.status]))
        for code, column in (
            (filter and filter.from_location_code, T.from_location_id),
            (filter and filter.to_location_code, T.to_location_id),
        ):
            if code:
                query = query.where(column.in_(select(models.Location.id).where(models.Location.code == code)))
        if filter and filter.sku:
            query = query.where(
                T.id.in_(
                    select(models.TransferLine.transfer_id)
                    .join(models.Product, models.Product.id == models.TransferLine.product_id)
                    .where(models.Product.sku == filter.sku)
                )
            )
        database = context(info).database
        page = await paginate(
            database, query, lambda row: Transfer.from_row(row, []), first=first, after=after, last=last, before=before
        )
        # Every line of the page in one query, not one per transfer.
        async with database.session() as session:
            lines = await transfers.transfer_lines(session, [edge.node.row.id for edge in page.edges])
        for edge in page.edges:
            edge.node = Transfer.from_row(edge.node.row, lines[edge.node.row.id])
        return page

    @strawberry.field(description="One transfer by global id.", permission_classes=STAFF)
    async def transfer(self, info: Info, id: strawberry.ID) -> Transfer | None:
        async with context(info).database.session() as session:
            row = await session.get(models.Transfer, db_id(id, "Transfer"))
            return await transfer_node(session, row) if row else None

    @strawberry.field(description="Alerts raised (low stock, ...), newest first.", permission_classes=STAFF)
    async def alerts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AlertFilter | None = None,
    ) -> Connection[Alert]:
        A = models.AlertRecord
        query = select(A).order_by(A.id.desc())
        if filter and filter.kind:
            query = query.where(A.kind == filter.kind)
        if filter and filter.sku:
            query = query.where(A.sku == filter.sku)
        if filter and filter.open is not None:
            query = query.where(A.resolved_at.is_(None) if filter.open else A.resolved_at.is_not(None))
        return await paginate(
            context(info).database, query, Alert.from_row, first=first, after=after, last=last, before=before
        )


@strawberry.type
class InventoryMutation:
    @strawberry.mutation(
        description="Record a cycle count; the difference to on hand is booked as a COUNT movement.",
        permission_classes=OPERATE,
    )
    async def stock_count(self, info: Info, input: StockCountInput) -> StockCountPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            _, difference = await inventory.count_stock(
                session,
                sku=input.sku,
                location_code=input.location_code,
                counted_quantity=input.counted_quantity,
                reason=input.reason,
                actor=caller.label,
            )
            level = await _level(session, input.sku, input.location_code)
            return {"stock_level": level, "difference": difference}

        return await run_mutation(info, StockCountPayload, work)

    @strawberry.mutation(
        description="Set safety stock, reorder point, reorder quantity and lead time of a SKU at a location.",
        permission_classes=OPERATE,
    )
    async def reorder_policy_set(self, info: Info, input: ReorderPolicySetInput) -> ReorderPolicySetPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await replenishment.set_reorder_policy(
                session, sku=input.sku, location_code=input.location_code, policy=input.to_domain()
            )
            return {"stock_level": _stock_level(row, input.sku)}

        return await run_mutation(info, ReorderPolicySetPayload, work)

    @strawberry.mutation(
        description="Suggest transfers that even out days of cover between locations (from recent sales), "
        "never taking a source below its reorder point; optionally create them as DRAFTs.",
        permission_classes=OPERATE,
    )
    async def transfer_suggest(self, info: Info, input: TransferSuggestInput) -> TransferSuggestPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            moves = await transfers.suggest_transfers(
                session,
                skus=input.skus,
                location_codes=input.location_codes,
                sales_window_days=input.sales_window_days,
            )
            created = []
            if input.create:
                for row in await transfers.create_suggested_transfers(session, moves, actor=caller.label):
                    created.append(await transfer_node(session, row))
            return {"suggestions": [TransferSuggestion.from_domain(move) for move in moves], "transfers": created}

        return await run_mutation(info, TransferSuggestPayload, work)

    @strawberry.mutation(description="Create a DRAFT transfer between two locations.", permission_classes=OPERATE)
    async def transfer_create(self, info: Info, input: TransferCreateInput) -> TransferCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await transfers.create_transfer(
                session,
                from_location_code=input.from_location_code,
                to_location_code=input.to_location_code,
                lines=[line.to_domain() for line in input.lines],
                reference=input.reference,
            )
            return {"transfer": await transfer_node(session, row)}

        return await run_mutation(info, TransferCreatePayload, work)

    @strawberry.mutation(
        description="Ship a DRAFT transfer (TRANSFER_OUT): on hand leaves the source, in transit at the destination.",
        permission_classes=OPERATE,
    )
    async def transfer_ship(self, info: Info, input: TransferShipInput) -> TransferShipPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await transfers.ship_transfer(session, db_id(input.id, "Transfer"), caller.label)
            return {"transfer": await transfer_node(session, row)}

        return await run_mutation(info, TransferShipPayload, work)

    @strawberry.mutation(
        description="Book what arrived (TRANSFER_IN); partial receipts are allowed, and closing records what "
        "is missing.",
        permission_classes=OPERATE,
    )
    async def transfer_receive(self, info: Info, input: TransferReceiveInput) -> TransferReceivePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await transfers.receive_transfer(
                session,
                db_id(input.id, "Transfer"),
                lines=[line.to_domain() for line in input.lines] if input.lines is not None else None,
                close=input.close,
                actor=caller.label,
            )
            return {"transfer": await transfer_node(session, row)}

        return await run_mutation(info, TransferReceivePayload, work)


async def _level(session: AsyncSession, sku: str, location_code: str) -> StockLevel:
    row = await session.scalar(
        select(models.StockLevel)
        .join(models.Product, models.Product.id == models.StockLevel.product_id)
        .join(models.Location, models.Location.id == models.StockLevel.location_id)
        .where(models.Product.sku == sku, models.Location.code == location_code)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return _stock_level(row, sku)


@strawberry.type
class InventorySubscription:
    @strawberry.subscription(
        description="Every stock movement, with the level's figures after it; filter by SKU and/or location.",
        permission_classes=SYNC_READ,
    )
    async def stock_events(
        self, info: Info, sku: str | None = None, location_code: str | None = None
    ) -> AsyncGenerator[StockEvent, None]:
        async for event in hub.subscribe("stock"):
            if sku is not None and event.get("sku") != sku:
                continue
            if location_code is not None and event.get("locationCode") != location_code:
                continue
            yield StockEvent.from_event(event)

    @strawberry.subscription(
        description="Alerts as they are raised: LOW_STOCK (with a suggested purchase quantity), and later kinds.",
        permission_classes=STAFF,
    )
    async def alerts(self, info: Info, kind: str | None = None) -> AsyncGenerator[Alert, None]:
        async for event in hub.subscribe("alert"):
            if kind is not None and event.get("kind") != kind:
                continue
            yield Alert.from_event(event)
