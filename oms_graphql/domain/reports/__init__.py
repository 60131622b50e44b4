"""Reports: sales trends, fulfilment and inventory KPIs, read from daily aggregate tables.

How the aggregates stay true (see facts.py): every change to an order that a report can
see (a status change, a refund, a return, a dispatch, a delivery) already goes through
``domain/orders.py`` (``set_status`` / ``note_event``), which also asks, through the outbox,
for the ``refresh_order_reports`` job (one per transaction, for every order it changed). The
job recomputes each order's contribution and applies the difference to the daily tables,
in one transaction with the order rows locked.
An outbox job rather than a hook in the same transaction because it keeps the order hot
path at one extra outbox row (no reads of lines and shipments there), and because the
job is idempotent by construction: a repeated or replayed job finds the contribution
already applied and changes nothing. `oms report rebuild` recomputes everything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from oms_graphql.db.models import OutboxEntry

REFRESH_JOB = "refresh_order_report"
# One job for every order a transaction changed: a page of 100 ingested orders asks once.
REFRESH_BATCH_JOB = "refresh_order_reports"

_REQUESTED = "report_refresh_requested"


def request_refresh(session: AsyncSession, order_id: int) -> None:
    """Ask for the order's report figures to be refreshed once this transaction commits: the
    orders asked for in one transaction share one ``refresh_order_reports`` job."""
    requested: set[int] = session.sync_session.info.setdefault(_REQUESTED, set())
    requested.add(order_id)


@event.listens_for(Session, "before_commit")
def _request_refresh_job(session: Session) -> None:
    # A savepoint's release fires this too: only the transaction's own commit writes the job
    # (the commit then flushes the row with the rest).
    if session.in_nested_transaction():
        return
    requested = session.info.pop(_REQUESTED, None)
    if requested:
        session.add(OutboxEntry(kind="job", topic=REFRESH_BATCH_JOB, payload={"order_ids": sorted(requested)}))


@event.listens_for(Session, "after_transaction_end")
def _forget_requests(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back: its orders' changes are gone with it
        session.info.pop(_REQUESTED, None)
