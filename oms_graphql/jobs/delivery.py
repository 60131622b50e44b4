"""Delivery jobs: apply pushed tracking (stored first by POST /webhooks/carriers/{code})."""

from __future__ import annotations

from typing import Any

import dramatiq

from oms_graphql.db.models import Carrier
from oms_graphql.domain import tracking
from oms_graphql.domain.carriers import carrier_config
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.carrier_contract import TrackingPush
from oms_graphql.plugins.host import plugin_manager


def parse_push(carrier: Carrier, body: bytes) -> TrackingPush | None:
    """The plugin's parse hook for a stored push (pure: no I/O)."""
    return plugin_manager().hook.oms_carrier_parse_tracking_push(carrier=carrier_config(carrier), body=body)


@dramatiq.actor(queue_name="delivery", max_retries=20)
def ingest_tracking_message(message_id: int) -> None:
    """Apply one stored tracking push; idempotent (a message is applied once, events are deduplicated)."""

    async def work(session: Any) -> None:
        await tracking.ingest_push(session, message_id, parse_push)

    in_transaction(work)
