"""Per-request DataLoaders: one query per relation per request, never one per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from oms_graphql.db import models
from oms_graphql.db.engine import Database
from oms_graphql.domain import customer_history


class Loaders:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.product = self._by_id(models.Product)
        self.location = self._by_id(models.Location)
        self.channel = self._by_id(models.Channel)
        self.customer = self._by_id(models.Customer)
        self.address = self._by_id(models.Address)
        self.order = self._by_id(models.Order)
        # Read-only rows, not ORM objects: a page of 100 orders has ~300 lines, and a Core row
        # costs a fraction of an ORM instance to load (its readers only read attributes).
        self.lines_by_order = self._many(
            models.OrderLine, models.OrderLine.order_id, models.OrderLine.line_no, read_only=True
        )
        self.allocations_by_order = self._many(models.Allocation, models.Allocation.order_id, models.Allocation.id)
        self.shipments_by_order = self._many(models.Shipment, models.Shipment.order_id, models.Shipment.id)
        self.events_by_order = self._many(models.OrderEvent, models.OrderEvent.order_id, models.OrderEvent.id)
        self.holds_by_order = self._many(models.Hold, models.Hold.order_id, models.Hold.id)
        self.fulfillment_orders_by_order = self._many(
            models.FulfillmentOrder, models.FulfillmentOrder.order_id, models.FulfillmentOrder.id
        )
        self.shipment_lines = self._many(models.ShipmentLine, models.ShipmentLine.shipment_id, models.ShipmentLine.id)
        self.returns_by_order = self._many(models.Return, models.Return.order_id, models.Return.id)
        self.return_lines = self._many(models.ReturnLine, models.ReturnLine.return_id, models.ReturnLine.id)
        self.identities_by_customer = self._many(
            models.CustomerIdentity, models.CustomerIdentity.customer_id, models.CustomerIdentity.id
        )
        self.customer_summary = self._computed(customer_history.summaries)
        self.customer_preferences = self._computed(customer_history.preferences)
        self.shipment_events = self._many(
            models.ShipmentEvent, models.ShipmentEvent.shipment_id, models.ShipmentEvent.occurred_at
        )

    def _by_id(self, model: Any) -> DataLoader[int, Any]:
        async def load(ids: Sequence[int]) -> list[Any]:
            async with self.database.session() as session:
                rows = (await session.scalars(select(model).where(model.id.in_(set(ids))))).all()
            found = {row.id: row for row in rows}
            return [found.get(key) for key in ids]

        return DataLoader(load_fn=load)

    def _computed(self, compute: Any) -> DataLoader[int, Any]:
        """A figure the domain computes for a whole page of ids at once."""

        async def load(keys: Sequence[int]) -> list[Any]:
            async with self.database.session() as session:
                found = await compute(session, list(dict.fromkeys(keys)))
            return [found[key] for key in keys]

        return DataLoader(load_fn=load)

    def _many(
        self, model: Any, key_column: Any, order_column: Any, read_only: bool = False
    ) -> DataLoader[int, list[Any]]:
        wanted = select(*model.__table__.columns) if read_only else select(model)

        async def load(keys: Sequence[int]) -> list[list[Any]]:
            async with self.database.session() as session:
                query = wanted.where(key_column.in_(set(keys))).order_by(order_column)
                result = await session.execute(query)
                rows = result.all() if read_only else result.scalars().all()
            grouped: dict[int, list[Any]] = defaultdict(list)
            for row in rows:
                grouped[getattr(row, key_column.key)].append(row)
            return [grouped.get(key, []) for key in keys]

        return DataLoader(load_fn=load)
