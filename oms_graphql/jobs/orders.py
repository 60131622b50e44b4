"""Order jobs: allocation and backorder allocation."""

from __future__ import annotations

from functools import partial

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.domain.allocation import (
    AllocationOutcome,
    RankLocations,
    allocate_orders,
    backordered_order_ids,
    serving_pages,
)
from oms_graphql.domain.allocation import allocate_order as allocate
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.host import allocation_ranker

log = structlog.get_logger(__name__)


async def _allocate(session: AsyncSession, *, order_id: int, rank: RankLocations | None) -> AllocationOutcome:
    return await allocate(session, order_id, rank=rank)


@dramatiq.actor(queue_name="orders", max_retries=10)
def allocate_order(order_id: int) -> None:
    """Reserve stock for one order (idempotent: a no-op once allocated)."""
    outcome = in_transaction(partial(_allocate, order_id=order_id, rank=allocation_ranker()))
    log.info("order allocation", order_id=order_id, status=outcome.status, changed=outcome.changed)


@dramatiq.actor(queue_name="orders", max_retries=10)
def allocate_order_batch(order_ids: list[int]) -> None:
    """Reserve stock for a batch of orders in one transaction (idempotent per order)."""
    rank = allocation_ranker()
    outcomes = in_transaction(lambda session: allocate_orders(session, order_ids, rank=rank))
    log.info("batch allocation", orders=len(outcomes), changed=sum(1 for outcome in outcomes if outcome.changed))


@dramatiq.actor(queue_name="orders", max_retries=10)
def allocate_backorders(product_id: int) -> None:
    """Try every BACKORDERED order that wants this product, oldest first, a page per transaction."""
    order_ids = in_transaction(lambda session: backordered_order_ids(session, product_id))
    rank = allocation_ranker()
    for page in serving_pages(order_ids):
        outcomes = in_transaction(partial(allocate_orders, order_ids=page, rank=rank))
        allocated = [outcome.order_id for outcome in outcomes if outcome.changed]
        if allocated:
            log.info("backorders allocated", product_id=product_id, order_ids=allocated)
