"""Delivery jobs: dispatch shipments through their carrier, apply pushed tracking.

Carrier calls happen here, between short transactions (never inside one).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import dramatiq
import structlog

from oms_graphql.db.models import Carrier
from oms_graphql.domain import dispatch, live_quotes, shipment_cancel, tracking
from oms_graphql.domain.carriers import carrier_config
from oms_graphql.domain.errors import DomainError
from oms_graphql.jobs.channels import as_retry
from oms_graphql.jobs.runtime import in_transaction
from oms_graphql.plugins.carrier_contract import TrackingPush
from oms_graphql.plugins.contract import PayloadError, PermanentError, RetryableError
from oms_graphql.plugins.host import plugin_manager

log = structlog.get_logger(__name__)


def parse_push(carrier: Carrier, body: bytes) -> TrackingPush | None:
    """The plugin's parse hook for a stored push (pure: no I/O)."""
    return plugin_manager().hook.oms_carrier_parse_tracking_push(carrier=carrier_config(carrier), body=body)


@dramatiq.actor(queue_name="delivery", max_retries=20)
def ingest_tracking_message(message_id: int) -> None:
    """Apply one stored tracking push; idempotent (a message is applied once, events are deduplicated)."""

    async def work(session: Any) -> None:
        await tracking.ingest_push(session, message_id, parse_push)

    in_transaction(work)


# --- dispatch ---------------------------------------------------------------


@dramatiq.actor(queue_name="delivery", max_retries=20, max_backoff=30 * 60 * 1000)
def dispatch_shipment(shipment_id: int) -> None:
    """Get a PENDING shipment's waybill and label from its carrier and book it DISPATCHED.

    Retried on transient carrier faults (the waybill call is idempotent by the
    shipment's reference); a permanent refusal parks the shipment with a hold and an alert.
    """
    call = in_transaction(partial(dispatch.waybill_call, shipment_id=shipment_id))
    if call is None:
        return  # dispatched already, or cancelled
    hook = plugin_manager().hook
    try:
        waybill = hook.oms_carrier_create_waybill(carrier=call.carrier, request=call.request)
        if waybill is None:
            raise PermanentError(f"No installed plugin makes waybills for carrier kind {call.carrier.kind!r}")
        label = waybill.label
        if label is None:
            label = hook.oms_carrier_fetch_label(carrier=call.carrier, waybill=waybill)
    except RetryableError as error:
        log.warning("dispatch will be retried", shipment_id=shipment_id, carrier=call.carrier.code, error=str(error))
        raise as_retry(error) from error
    except (PermanentError, PayloadError) as error:
        problem = str(error)
        log.error("carrier refused the shipment", shipment_id=shipment_id, carrier=call.carrier.code, error=problem)
        in_transaction(partial(dispatch.park, shipment_id=shipment_id, problem=problem))
        return
    in_transaction(partial(dispatch.complete_dispatch, shipment_id=shipment_id, waybill=waybill, label=label))


@dramatiq.actor(queue_name="delivery", max_retries=5)
def dispatch_fulfillment_order(fulfillment_order_id: int) -> None:
    """Automatic dispatch of a newly allocated fulfillment order (its location's autoDispatch)."""

    # The carriers' live prices first, outside any transaction; the rate table for those without.
    calls = in_transaction(partial(live_quotes.quote_calls, fulfillment_order_id=fulfillment_order_id))
    quotes = live_quotes.ask_carriers(calls)
    shipment_id = in_transaction(
        partial(dispatch.plan_automatic, fulfillment_order_id=fulfillment_order_id, quotes=quotes)
    )
    if shipment_id is not None:
        dispatch_shipment(shipment_id)


@dramatiq.actor(queue_name="delivery", max_retries=5)
def dispatch_fulfillment_orders(fulfillment_order_ids: list[int]) -> None:
    """Automatic dispatch of a batch's newly allocated fulfillment orders, each on its own.

    Their quotes are read together, their shipments planned in one transaction (a savepoint
    each), then each shipment goes to its carrier. One fulfillment order's trouble stays its
    own: it is handed to a job of its own (retried there) and the others go on. A rerun (the
    message redelivered after a crash) finds the shipments made or dispatched: none is doubled.
    """
    calls = in_transaction(partial(live_quotes.quote_calls_of, fulfillment_order_ids=fulfillment_order_ids))
    quotes = {held: live_quotes.ask_carriers(mine) for held, mine in calls.items()}
    shipment_ids = in_transaction(
        partial(dispatch.plan_automatic_many, fulfillment_order_ids=fulfillment_order_ids, quotes=quotes)
    )
    for shipment_id in shipment_ids:
        try:
            dispatch_shipment(shipment_id)
        except Exception as error:  # a carrier fault (to retry) or a surprise: its own job retries it
            log.warning("shipment dispatch gets a job of its own", shipment_id=shipment_id, error=str(error))
            delay = error.delay if isinstance(error, dramatiq.Retry) else None
            dispatch_shipment.send_with_options(args=(shipment_id,), delay=delay)


@dramatiq.actor(queue_name="delivery", max_retries=5)
def poll_shipment_tracking(shipment_id: int) -> None:
    """Ask the carrier for a shipment's tracking (for carriers that push nothing, or a missed push)."""
    call = in_transaction(partial(tracking.poll_call, shipment_id=shipment_id))
    if call is None:
        return
    try:
        events = plugin_manager().hook.oms_carrier_track(
            carrier=call.carrier, tracking_number=call.tracking_number, phone=call.phone, company_code=None
        )
    except RetryableError as error:
        raise as_retry(error) from error
    except (PermanentError, PayloadError) as error:
        log.warning("tracking poll failed", shipment_id=shipment_id, carrier=call.carrier.code, error=str(error))
        return
    if events:
        in_transaction(partial(tracking.apply_tracking, carrier_code=call.carrier.code, events=events))


# --- cancelling at the carrier ----------------------------------------------


@dramatiq.actor(queue_name="delivery", max_retries=20, max_backoff=30 * 60 * 1000)
def cancel_shipment(shipment_id: int, redispatch: bool = False, by: str | None = None) -> None:
    """Cancel a dispatched shipment at its carrier and book it CANCELLED (stock back to reserved).

    Queued when shipmentCancel could not reach the carrier. Idempotent: a shipment already
    cancelled is left alone, and the booking happens once (:func:`shipment_cancel.complete_cancel`).
    """
    try:
        call = in_transaction(partial(shipment_cancel.cancel_call_by_id, shipment_id=shipment_id))
    except DomainError as error:  # collected meanwhile: too late
        in_transaction(partial(shipment_cancel.record_refusal, shipment_id=shipment_id, problem=error.message))
        return
    if call is None:
        return
    try:
        shipment_cancel.ask_carrier(call)
    except RetryableError as error:
        log.warning("cancel will be retried", shipment_id=shipment_id, carrier=call.carrier.code, error=str(error))
        raise as_retry(error) from error
    except DomainError as error:
        in_transaction(partial(shipment_cancel.record_refusal, shipment_id=shipment_id, problem=error.message))
        return
    in_transaction(partial(shipment_cancel.complete_cancel, shipment_id=shipment_id, redispatch=redispatch, actor=by))


@dramatiq.actor(queue_name="delivery", max_retries=10)
def retract_shipment_confirmation(shipment_id: int) -> None:
    """Tell the channel a shipment it heard of was cancelled; alert people when it cannot be told."""
    found = in_transaction(partial(shipment_cancel.retraction_for, shipment_id=shipment_id))
    if found is None:
        return
    config, confirmation = found
    try:
        retracted = plugin_manager().hook.oms_channel_retract_shipment(channel=config, shipment=confirmation)
    except RetryableError as error:
        raise as_retry(error) from error
    except PermanentError as error:
        why = f"refused to take it back ({error})"
    else:
        if retracted:
            log.info("shipment retracted at the channel", channel=config.code, order=confirmation.external_order_id)
            return
        why = "refused to take it back" if retracted is False else "its marketplace offers no way to undo a shipment"
    in_transaction(partial(shipment_cancel.channel_cannot_retract, shipment_id=shipment_id, why=why))
