"""Reports: sales trends, fulfilment and inventory KPIs, read from daily aggregate tables.

How the aggregates stay true (see facts.py): every change to an order that a report can
see (a status change, a refund, a return, a dispatch, a delivery) already goes through
``domain/orders.py`` (``set_status`` / ``note_event``), which also asks, through the outbox,
for the ``refresh_order_report`` job. The job recomputes that one order's contribution and
applies the difference to the daily tables, in one transaction with the order row locked.
An outbox job rather than a hook in the same transaction because it keeps the order hot
path at one extra outbox row (no reads of lines and shipments there), and because the
job is idempotent by construction: a repeated or replayed job finds the contribution
already applied and changes nothing. `oms report rebuild` recomputes everything.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.events.outbox import request_job

REFRESH_JOB = "refresh_order_report"

_REQUESTED = "report_refresh_requested"


def request_refresh(session: AsyncSession, order_id: int) -> None:
    """Ask (once per transaction and order) for the order's report figures to be refreshed."""
    requested: set[int] = session.sync_session.info.setdefault(_REQUESTED, set())
    if order_id in requested:
        return
    requested.add(order_id)
    request_job(session, REFRESH_JOB, order_id=order_id)
