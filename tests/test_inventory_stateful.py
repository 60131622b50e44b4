"""Random sequences of stock operations against the real database, checked against a model after every step."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from oms_graphql.db.models import Location, Product, StockLevel
from oms_graphql.domain import inventory, transfers
from oms_graphql.domain.catalog import LocationDetails, ProductDetails, create_location, create_product
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.inventory import MovementReason, Reference
from oms_graphql.domain.orders import AddressDetails

LOCATIONS = ("A", "B")
quantities = st.integers(min_value=1, max_value=12)
places = st.sampled_from(LOCATIONS)


class StockMachine(RuleBasedStateMachine):
    """The model: on hand, reserved and in transit per location of one fresh SKU."""

    loop: asyncio.AbstractEventLoop
    database: Any

    def __init__(self) -> None:
        super().__init__()
        self.model = {place: {"on_hand": 0, "reserved": 0, "in_transit": 0} for place in LOCATIONS}
        tag = uuid.uuid4().hex[:8].upper()
        self.sku = f"SM-{tag}"
        self.codes = {place: f"SM{place}-{tag}" for place in LOCATIONS}

    def run(self, work: Callable[[Any], Awaitable[Any]]) -> bool:
        """Run ``work`` in one transaction; False when the domain refused it (nothing written)."""

        async def go() -> bool:
            try:
                async with self.database.session() as session, session.begin():
                    await work(session)
            except DomainError:
                return False
            return True

        return self.loop.run_until_complete(go())

    async def _objects(self, session: Any, place: str) -> tuple[Product, Location]:
        return await inventory.product_and_location(session, self.sku, self.codes[place])

    @initialize()
    def create_sku_and_locations(self) -> None:
        async def work(session: Any) -> None:
            await create_product(session, ProductDetails(sku=self.sku, name="Stateful item"))
            for code in self.codes.values():
                await create_location(
                    session,
                    LocationDetails(
                        code=code, name=code, kind="WAREHOUSE", address=AddressDetails(country="CN", line1="1 Road")
                    ),
                )

        assert self.run(work)

    @rule(place=places, quantity=st.integers(min_value=-3, max_value=15))
    def receive(self, place: str, quantity: int) -> None:
        done = self.run(
            lambda s: inventory.receive_stock(
                s, sku=self.sku, location_code=self.codes[place], quantity=quantity, reference=Reference("TEST")
            )
        )
        assert done == (quantity > 0)
        if done:
            self.model[place]["on_hand"] += quantity

    @rule(place=places, quantity=quantities)
    def reserve(self, place: str, quantity: int) -> None:
        async def work(session: Any) -> None:
            product, location = await self._objects(session, place)
            if (
                await inventory.reserve_stock(
                    session, product=product, location=location, quantity=quantity, reference=Reference("ORDER")
                )
                is None
            ):
                raise DomainError("short")

        level = self.model[place]
        assert self.run(work) == (level["on_hand"] - level["reserved"] >= quantity)
        if level["on_hand"] - level["reserved"] >= quantity:
            level["reserved"] += quantity

    @rule(place=places, quantity=quantities)
    def release(self, place: str, quantity: int) -> None:
        quantity = min(quantity, self.model[place]["reserved"])
        if quantity == 0:
            return

        async def work(session: Any) -> None:
            product, location = await self._objects(session, place)
            assert (
                await inventory.move_stock(
                    session, product=product, location=location, reason=MovementReason.RELEASE, reserved=-quantity
                )
                is not None
            )

        assert self.run(work)
        self.model[place]["reserved"] -= quantity

    @rule(place=places, quantity=quantities)
    def ship(self, place: str, quantity: int) -> None:
        done = self.run(
            lambda s: inventory.ship_reserved(
                s, sku=self.sku, location_code=self.codes[place], quantity=quantity, reference=Reference("SHIPMENT")
            )
        )
        assert done == (quantity <= self.model[place]["reserved"])
        if done:
            self.model[place]["on_hand"] -= quantity
            self.model[place]["reserved"] -= quantity

    @rule(place=places, quantity=quantities, exchange=st.booleans())
    def restock_return(self, place: str, quantity: int, exchange: bool) -> None:
        reason = MovementReason.EXCHANGE if exchange else MovementReason.RETURN
        assert self.run(
            lambda s: inventory.restock(
                s,
                sku=self.sku,
                location_code=self.codes[place],
                quantity=quantity,
                reason=reason,
                reference=Reference("RETURN"),
            )
        )
        self.model[place]["on_hand"] += quantity

    @rule(place=places, delta=st.integers(min_value=-12, max_value=12).filter(bool))
    def adjust(self, place: str, delta: int) -> None:
        done = self.run(
            lambda s: inventory.adjust_stock(
                s, sku=self.sku, location_code=self.codes[place], delta=delta, reason="stateful", actor="test"
            )
        )
        level = self.model[place]
        assert done == (level["on_hand"] + delta >= level["reserved"])
        if done:
            level["on_hand"] += delta

    @rule(place=places, counted=st.integers(min_value=0, max_value=30))
    def count(self, place: str, counted: int) -> None:
        done = self.run(
            lambda s: inventory.count_stock(
                s, sku=self.sku, location_code=self.codes[place], counted_quantity=counted, reason=None, actor="test"
            )
        )
        assert done == (counted >= self.model[place]["reserved"])
        if done:
            self.model[place]["on_hand"] = counted

    @rule(source=places, quantity=quantities, received=st.integers(min_value=0, max_value=12), close=st.booleans())
    def transfer(self, source: str, quantity: int, received: int, close: bool) -> None:
        destination = "B" if source == "A" else "A"
        received = min(received, quantity)

        async def work(session: Any) -> None:
            made = await transfers.create_transfer(
                session,
                from_location_code=self.codes[source],
                to_location_code=self.codes[destination],
                lines=[transfers.TransferLineRequest(self.sku, quantity)],
            )
            await transfers.ship_transfer(session, made.id, "test")
            if received or close:
                lines = [transfers.TransferLineRequest(self.sku, received)] if received else []
                await transfers.receive_transfer(session, made.id, lines=lines, close=close, actor="test")

        origin = self.model[source]
        can_ship = origin["on_hand"] - origin["reserved"] >= quantity
        assert self.run(work) == can_ship
        if can_ship:
            origin["on_hand"] -= quantity
            self.model[destination]["on_hand"] += received
            if not close:
                self.model[destination]["in_transit"] += quantity - received

    @invariant()
    def levels_match_the_model_and_the_ledger(self) -> None:
        async def read() -> tuple[dict[str, dict[str, int]], list]:
            async with self.database.session() as session:
                rows = await session.execute(
                    select(Location.code, StockLevel.on_hand, StockLevel.reserved, StockLevel.in_transit)
                    .join(Location, Location.id == StockLevel.location_id)
                    .join(Product, Product.id == StockLevel.product_id)
                    .where(Product.sku == self.sku)
                )
                found = {code: {"on_hand": a, "reserved": b, "in_transit": c} for code, a, b, c in rows}
                differences = [d for d in await inventory.verify_ledger(session) if d.sku == self.sku]
            return found, differences

        found, differences = self.loop.run_until_complete(read())
        assert differences == []
        for place, expected in self.model.items():
            actual = found.get(self.codes[place], {"on_hand": 0, "reserved": 0, "in_transit": 0})
            assert actual == expected, (place, actual, expected)
            assert actual["on_hand"] >= actual["reserved"] >= 0 and actual["in_transit"] >= 0


def test_random_stock_operations_keep_levels_equal_to_the_model_and_the_ledger(database_url):
    from oms_graphql.db.engine import Database

    loop = asyncio.new_event_loop()
    StockMachine.loop = loop
    StockMachine.database = Database(database_url)
    try:
        run_state_machine_as_test(
            StockMachine,
            settings=settings(
                max_examples=30, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
            ),
        )
    finally:
        loop.run_until_complete(StockMachine.database.dispose())
        loop.close()
