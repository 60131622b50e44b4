"""A pulled page ingested as a batch: one job, one transaction, set operations for its new
orders, and the very same orders, events, holds and customers as one message at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from oms_graphql.db.engine import Database
from oms_graphql.db.models import (
    Channel,
    Customer,
    Hold,
    InboundMessage,
    Order,
    OrderEvent,
    OrderLine,
    OutboxEntry,
)
from oms_graphql.plugins.contract import RawOrderPayload
from tests.channel_support import create_channel, ensure_product, taobao_settings
from tests.conftest import PG_URL, REDIS_URL, fresh_database
from tests.fakes import taobao
from tests.support import add_location, eventually, receive, run_async, sigkill_when_stalled

# SKUs of this module only: its stock must not draw other tests' orders, nor theirs its own.
RUN = uuid.uuid4().hex[:6].upper()
DRESS, SOCK = f"BT-DRESS-{RUN}", f"BT-SOCK-{RUN}"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stocked(admin) -> str:
    code = f"WH-BATCH-{datetime.now(UTC):%H%M%S%f}"
    add_location(admin, code, priority=1)
    for sku in (DRESS, SOCK):
        ensure_product(admin, sku)
        receive(admin, sku, code, 1000)
    return code


def add_trade(state: taobao.TaobaoState, **changes: Any) -> str:
    """A copy of sample trade A (paid, two lines, the second refunded) selling this module's SKUs."""
    tid = state.add_order(**changes)
    for line, sku in zip(state.trades[tid]["orders"]["order"], (DRESS, SOCK), strict=True):
        line["outer_sku_id"] = sku
    return tid


def trades(state: taobao.TaobaoState, tag: str) -> list[str]:
    """A page as a burst brings it: new buyers, a buyer twice, a buyer we know from an earlier
    order (the first trade, ingested before the page), an unmapped SKU, an unpaid trade, and
    trades with and without a refunded line."""
    made = []

    def trade(buyer: str, mobile: str, **changes: Any) -> str:
        tid = add_trade(state, buyer_open_uid=f"{tag}-{buyer}", receiver_mobile=mobile, **changes)
        made.append(tid)
        return tid

    serial = f"{abs(hash(tag)) % 10**6:06d}"
    trade("known", f"139{serial}01")
    trade("a", f"139{serial}02")
    trade("b", f"139{serial}03", receiver_name="另一位")
    trade("a", f"139{serial}02")  # the same buyer again, in the same page
    trade("known", f"139{serial}01")  # known from the earlier order
    unmapped = trade("c", f"139{serial}04")
    state.trades[unmapped]["orders"]["order"][0]["outer_sku_id"] = f"NOPE-{tag}"
    unpaid = trade("d", f"139{serial}05", status="WAIT_BUYER_PAY")
    state.trades[unpaid].pop("pay_time", None)
    for line in state.trades[unpaid]["orders"]["order"]:
        line.update(status="WAIT_BUYER_PAY", refund_status="NO_REFUND")
    whole = trade("e", f"139{serial}06")
    state.trades[whole]["orders"]["order"][1].update(status="WAIT_SELLER_SEND_GOODS", refund_status="NO_REFUND")
    return made


def payloads(state: taobao.TaobaoState, tids: list[str]) -> list[RawOrderPayload]:
    return [RawOrderPayload(external_id=tid, body=state.trades[tid]) for tid in tids]


def store(database_url: str, code: str, page: list[RawOrderPayload], one_by_one: bool = False) -> list[int]:
    """Store a page as a pull does (one batch job), or each order as a webhook would (one job each)."""
    from oms_graphql.domain import inbound
    from oms_graphql.domain.orders import channel_by_code

    async def run() -> list[int]:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                channel = await channel_by_code(session, code)
                if not one_by_one:
                    return [o.message_id for o in await inbound.ingest_payloads(session, channel, page, None)]
                ids = []
                for payload in page:
                    message = await inbound.store_message(
                        session,
                        source=code,
                        kind=inbound.ORDER,
                        body=inbound.encode_body(payload.body),
                        external_id=payload.external_id,
                    )
                    inbound.queue_message(session, message)
                    ids.append(message.id)
                return ids
        finally:
            await database.dispose()

    return run_async(run())


def ingest(database_url: str, code: str, page: list[RawOrderPayload], one_by_one: bool) -> None:
    from oms_graphql.jobs.channels import ingest_inbound_batch, ingest_inbound_message

    ids = store(database_url, code, page, one_by_one)
    if one_by_one:
        for message_id in ids:
            ingest_inbound_message.fn(message_id=message_id)
    else:
        ingest_inbound_batch.fn(message_ids=ids)


def snapshot(database_url: str, code: str) -> dict[str, Any]:
    """Everything ingestion wrote for the channel's orders, without ids, numbers and clocks."""

    async def run() -> dict[str, Any]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                orders = (
                    await session.scalars(
                        select(Order).join(Channel, Channel.id == Order.channel_id).where(Channel.code == code)
                    )
                ).all()
                ids = {order.id: order.external_id for order in orders}
                customers = {
                    c.id: c
                    for c in await session.scalars(
                        select(Customer).where(
                            Customer.id.in_({order.customer_id for order in orders if order.customer_id})
                        )
                    )
                }
                first_of_customer: dict[int | None, str | None] = {}
                result: dict[str, Any] = {}
                for order in sorted(orders, key=lambda o: o.id):
                    customer = customers.get(order.customer_id) if order.customer_id else None
                    first_of_customer.setdefault(order.customer_id, order.external_id)
                    lines = (await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))).all()
                    events = (
                        await session.scalars(
                            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
                        )
                    ).all()
                    holds = (await session.scalars(select(Hold).where(Hold.order_id == order.id))).all()
                    result[order.external_id or ""] = {
                        "order": (
                            order.status,
                            order.resume_status,
                            order.currency,
                            order.subtotal,
                            order.discount,
                            order.shipping_fee,
                            order.tax,
                            order.total,
                            order.note,
                            order.placed_at,
                            order.paid_at is not None,
                            order.channel_updated_at,
                            order.promised_ship_by is not None,
                            order.cancelled_at,
                        ),
                        # Who the buyer is: the first order of the same customer, and their details.
                        "customer": (
                            first_of_customer[order.customer_id] if order.customer_id else None,
                            (customer.name, customer.email) if customer else None,
                        ),
                        "lines": sorted(
                            (
                                line.line_no,
                                line.sku,
                                line.product_id,
                                line.channel_line_id,
                                line.channel_sku_id,
                                line.title,
                                line.quantity,
                                line.unit_price,
                                line.discount,
                                line.refunded_quantity,
                            )
                            for line in lines
                        ),
                        "events": [
                            (e.kind, e.from_status, e.to_status, e.message, (e.actor or "").replace(code, "<code>"))
                            for e in events
                        ],
                        "holds": sorted((h.reason, h.note, h.released_at is None) for h in holds),
                    }
                published = (
                    await session.scalars(
                        select(OutboxEntry)
                        .where(OutboxEntry.kind == "event", OutboxEntry.topic == "order")
                        .order_by(OutboxEntry.id)
                    )
                ).all()
                for entry in published:
                    if (external_id := ids.get(entry.payload.get("orderId"))) is not None:
                        result[external_id].setdefault("published", []).append(
                            (entry.payload["kind"], entry.payload["fromStatus"], entry.payload["status"])
                        )
                messages = (
                    await session.execute(
                        select(InboundMessage.external_id, InboundMessage.status, InboundMessage.outcome).where(
                            InboundMessage.source == code
                        )
                    )
                ).all()
                result["messages"] = sorted(tuple(str(v) for v in row) for row in messages)
                return result
        finally:
            await database.dispose()

    return run_async(run())


def settled(database_url: str, code: str) -> dict[str, Any]:
    """The snapshot once the jobs that follow ingestion ran (allocation, then dispatch):
    no order waits CONFIRMED, and nothing changed for a second."""
    last: dict[str, Any] | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = snapshot(database_url, code)
        waiting = any(value["order"][0] == "CONFIRMED" for key, value in current.items() if key != "messages")
        if current == last and not waiting:
            return current
        last = current
        time.sleep(1)
    raise AssertionError(f"the orders of {code} did not settle")


def test_a_page_in_one_batch_job_makes_the_same_orders_as_one_by_one(admin, uid, stocked, database_url):
    rows = {}
    for mode in ("batch", "single"):
        state = taobao.TaobaoState(load_samples=False)
        code = f"tb-{mode}-{uid}".lower()
        create_channel(admin, code, "taobao", taobao_settings("http://127.0.0.1:9", state), pollIntervalSeconds=3600)
        tids = trades(state, f"{mode}{uid}")
        ingest(database_url, code, payloads(state, tids[:1]), one_by_one=True)  # the known buyer's first order
        ingest(database_url, code, payloads(state, tids[1:]), one_by_one=mode == "single")
        # Compare by position in the page: the trade ids differ between the two channels.
        snap = settled(database_url, code)
        position = {tid: n for n, tid in enumerate(tids)}
        rows[mode] = {
            position[key]: {
                **value,
                "customer": (position.get(value["customer"][0]), value["customer"][1]),
            }
            for key, value in snap.items()
            if key != "messages"
        }
        rows[mode]["messages"] = sorted((position[ext], status, outcome) for ext, status, outcome in snap["messages"])
    assert len(rows["batch"]) == 9
    for position, batch in rows["batch"].items():  # one trade, one field at a time: a readable diff
        for field, value in batch.items() if isinstance(batch, dict) else [("messages", batch)]:
            single = rows["single"][position]
            assert (position, field, value) == (position, field, single[field] if isinstance(single, dict) else single)
    page = rows["batch"]
    assert page[3]["customer"][0] == page[1]["customer"][0] == 1 and page[4]["customer"][0] == 0
    assert page[5]["order"][0] == "ON_HOLD" and page[6]["order"][0] == "PENDING" and page[7]["order"][0] == "ALLOCATED"
    assert all(status == "PROCESSED" for _, status, _ in page["messages"])


def test_a_malformed_order_fails_alone_and_the_rest_of_the_page_goes_in(admin, uid, stocked, database_url):
    from oms_graphql.jobs.channels import ingest_inbound_batch

    state = taobao.TaobaoState(load_samples=False)
    code = f"tb-bad-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings("http://127.0.0.1:9", state), pollIntervalSeconds=3600)
    good = [add_trade(state) for _ in range(3)]
    unreadable = add_trade(state)
    del state.trades[unreadable]["orders"]
    bad_quantity = add_trade(state)
    state.trades[bad_quantity]["orders"]["order"][0]["num"] = 0
    ids = store(database_url, code, payloads(state, [good[0], unreadable, good[1], bad_quantity, good[2]]))

    ingest_inbound_batch.fn(message_ids=ids)
    ingest_inbound_batch.fn(message_ids=ids)  # a repeated job changes nothing

    snap = settled(database_url, code)
    assert sorted(k for k in snap if k != "messages") == sorted(good)
    statuses = {ext: (status, outcome) for ext, status, outcome in snap["messages"]}
    assert {ext for ext, (status, _) in statuses.items() if status == "PROCESSED"} == set(good)
    assert statuses[unreadable][0] == "FAILED" and statuses[bad_quantity][0] == "FAILED"
    assert "quantity" in statuses[bad_quantity][1]


def _concurrently(database_url: str, batches: list[list[int]]) -> None:
    """Run each batch's ingest job in its own `python` process, all started together."""
    start_at = time.time() + 2
    script = (
        "import sys, time; from oms_graphql.jobs.channels import ingest_inbound_batch; "
        "ids = [int(i) for i in sys.argv[2].split(',')]; time.sleep(max(0, float(sys.argv[1]) - time.time())); "
        "ingest_inbound_batch.fn(message_ids=ids)"
    )
    env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_BROKER_URL": "memory", "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(start_at), ",".join(map(str, batch))], env=env)
        for batch in batches
    ]
    assert [process.wait(timeout=120) for process in processes] == [0] * len(batches)


@pytest.mark.skipif(not PG_URL, reason="needs OMS_TEST_DATABASE_URL (PostgreSQL): real concurrent transactions")
def test_two_batch_jobs_racing_on_the_same_orders_double_nothing(admin, uid, stocked, database_url):
    state = taobao.TaobaoState(load_samples=False)
    code = f"tb-race-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings("http://127.0.0.1:9", state), pollIntervalSeconds=3600)
    tids = [
        add_trade(
            state, buyer_open_uid=f"race-{uid}-{n % 7}", receiver_mobile=f"137{abs(hash(uid)) % 10**6:06d}{n % 7:02d}"
        )
        for n in range(40)
    ]
    first = store(database_url, code, payloads(state, tids))
    for tid in tids:  # the re-pull of the overlap: the same orders, another version of each
        state.touch(tid, datetime.now(UTC) - timedelta(seconds=1))
    second = store(database_url, code, payloads(state, list(reversed(tids))))

    _concurrently(database_url, [first, second])

    snap = settled(database_url, code)
    assert sorted(k for k in snap if k != "messages") == sorted(tids)  # each order once
    assert {status for _, status, _ in snap["messages"]} == {"PROCESSED"}
    assert len({value["customer"][0] for key, value in snap.items() if key != "messages"}) == 7


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason="needs PostgreSQL and Redis: a real worker is killed")
def test_a_batch_worker_killed_mid_batch_loses_nothing_the_sweeper_finishes_it(uid):
    from tests.test_channel_faults import worker_process

    with fresh_database() as url:

        async def prepare() -> str:
            from oms_graphql.domain.channels import ChannelSpec
            from oms_graphql.domain.channels import create_channel as make_channel

            database = Database(url)
            async with database.session() as session, session.begin():
                await make_channel(
                    session,
                    ChannelSpec(
                        code=f"tb-kill-{uid}".lower(),
                        name="kill",
                        kind="taobao",
                        settings=taobao_settings("http://127.0.0.1:9", taobao.TaobaoState(load_samples=False)),
                        poll_interval_seconds=3600,
                    ),
                )
            await database.dispose()
            return f"tb-kill-{uid}".lower()

        code = run_async(prepare())
        state = taobao.TaobaoState(load_samples=False)
        tids = [add_trade(state) for _ in range(30)]
        ids = store(url, code, payloads(state, tids))
        marker = Path(f"/tmp/oms-batch-kill-{uid}")
        # The batch job stops just before its commit (everything inserted, nothing committed).
        script = (
            "import sys, time, pathlib; from oms_graphql.domain import inbound; "
            "real = inbound.ingest_batch\n"
            "async def stalled(*args, **kwargs):\n"
            "    result = await real(*args, **kwargs)\n"
            "    pathlib.Path(sys.argv[1]).write_text('stalled'); time.sleep(600)\n"
            "    return result\n"
            "inbound.ingest_batch = stalled\n"
            "from oms_graphql.jobs.channels import ingest_inbound_batch\n"
            "ingest_inbound_batch.fn(message_ids=[int(i) for i in sys.argv[2].split(',')])\n"
        )
        sigkill_when_stalled(script, marker, url, ids)
        assert _counts(url, code) == (0, {"RECEIVED": 30})

        with worker_process(url, f"oms-test-kill-{uid}") as start:
            start()
            eventually(lambda: _counts(url, code)[1] == {"PROCESSED": 30}, timeout=90, interval=1)
        assert _counts(url, code) == (30, {"PROCESSED": 30})


def _counts(url: str, code: str) -> tuple[int, dict[str, int]]:
    async def run() -> tuple[int, dict[str, int]]:
        database = Database(url)
        async with database.session() as session:
            orders = await session.scalar(
                select(func.count()).select_from(Order).join(Channel).where(Channel.code == code)
            )
            rows = await session.execute(
                select(InboundMessage.status, func.count())
                .where(InboundMessage.source == code)
                .group_by(InboundMessage.status)
            )
            counts = int(orders or 0), {status: n for status, n in rows.all()}
        await database.dispose()
        return counts

    return run_async(run())


def test_a_page_whose_orders_draw_the_same_number_goes_in_whole(admin, uid, stocked, database_url, monkeypatch):
    # Order numbers are six random characters a day: two orders of a busy day can draw the same one.
    # The page's multi-row insert used to fail whole on the unique number (the job retried it).
    from oms_graphql.domain import inbound
    from oms_graphql.domain import orders as order_rules
    from oms_graphql.jobs.channels import ingest_inbound_batch

    state = taobao.TaobaoState(load_samples=False)
    code = f"tb-num-{uid}".lower()
    create_channel(admin, code, "taobao", taobao_settings("http://127.0.0.1:9", state), pollIntervalSeconds=3600)
    tids = [add_trade(state) for _ in range(3)]

    async def stored_unqueued() -> list[int]:  # no job: this test's own call ingests them
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                return [
                    (
                        await inbound.store_message(
                            session, source=code, kind=inbound.ORDER, body=inbound.encode_body(p.body), external_id=tid
                        )
                    ).id
                    for tid, p in zip(tids, payloads(state, tids), strict=True)
                ]
        finally:
            await database.dispose()

    ids = run_async(stored_unqueued())
    taken = f"991230-{uid[:6].upper()}"
    drawn = iter([taken, taken, taken, *(f"991230-{uid[-5:].upper()}{n}" for n in range(9))])
    monkeypatch.setattr(order_rules, "new_order_number", lambda _now: next(drawn))
    ingest_inbound_batch.fn(message_ids=ids)

    snap = settled(database_url, code)
    assert sorted(k for k in snap if k != "messages") == sorted(tids)
    assert {status for _, status, _ in snap["messages"]} == {"PROCESSED"}
