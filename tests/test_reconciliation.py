"""Reconciliation (补单): the trailing window listed again, whatever the pull missed stored.

A pull never sees a trade whose `modified` stamp lands behind its cursor (a marketplace
that stamps a change minutes late, beyond the pull's safety margin). The reconciliation,
asked for over GraphQL, run by `oms channel reconcile` or on its schedule, lists the
window again and stores it; what was stored already is left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from oms_graphql.db.engine import Database
from oms_graphql.db.models import Channel
from oms_graphql.domain import channel_sync
from tests.channel_support import (
    amazon_order,
    amazon_settings,
    create_channel,
    order_count,
    order_of,
    sync_until,
    taobao_settings,
)
from tests.fakes import amazon, taobao
from tests.fakes.server import serve
from tests.support import eventually, run_async

RECONCILE = """mutation($code: String!, $since: DateTime) {
  channelReconcile(input: {channelCode: $code, since: $since}) {
    channel { code } userErrors { field message code } } }"""
LAST = """{ channels { code lastReconcile { listed alreadyStored newlyStored failed since until finishedAt } } }"""


def last_reconcile(client, code: str) -> dict | None:
    return next(channel["lastReconcile"] for channel in client(LAST)["channels"] if channel["code"] == code)


def late_trades(state: taobao.TaobaoState, count: int, minutes_ago: int) -> list[str]:
    """Trades stamped well behind what a pull has already passed."""
    stamp = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return [state.add_trade(status="WAIT_SELLER_SEND_GOODS", modified=stamp) for _ in range(count)]


def pulled_channel(admin, uid: str, state: taobao.TaobaoState, url: str) -> tuple[str, list[str]]:
    """A channel whose first pull stored three recent trades."""
    code = f"tb-recon-{uid}".lower()
    recent = [state.add_trade(status="WAIT_SELLER_SEND_GOODS", modified=datetime.now(UTC) - timedelta(seconds=5))]
    recent += [state.add_trade(status="WAIT_SELLER_SEND_GOODS", modified=datetime.now(UTC) - timedelta(minutes=50))]
    recent += [state.add_trade(status="WAIT_SELLER_SEND_GOODS", modified=datetime.now(UTC) - timedelta(hours=3))]
    create_channel(admin, code, "taobao", taobao_settings(url, state), syncFrom=_iso(timedelta(hours=6)))
    for tid in recent:
        sync_until(admin, code, tid)
    return code, recent


def _iso(ago: timedelta) -> str:
    return (datetime.now(UTC) - ago).isoformat()


def test_channel_reconcile_stores_what_the_pull_missed_and_counts_the_rest(admin, uid):
    state = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(state)) as url:
        code, recent = pulled_channel(admin, uid, state, url)
        missed = late_trades(state, 2, minutes_ago=40)
        sync_until(admin, code, recent[0])  # another pull: the late trades are behind its cursor
        assert [order_of(admin, code, tid) for tid in missed] == [None, None]

        payload = admin.mutate("channelReconcile", RECONCILE, {"code": code, "since": _iso(timedelta(hours=2))})
        assert payload["userErrors"] == []

        summary = eventually(lambda: last_reconcile(admin, code), timeout=30)
        assert all(order_of(admin, code, tid) for tid in missed)
        # The window of the last two hours holds the 50-minute-old trade, the fresh one and the two late ones.
        assert (summary["listed"], summary["alreadyStored"], summary["newlyStored"], summary["failed"]) == (4, 2, 2, 0)
        assert order_count(admin, code) == 5
        fullinfo = [call["form"]["tid"] for call in state.calls_to(taobao.FULLINFO_METHOD)]
        assert sorted(fullinfo) == sorted(recent + missed)  # the stored ones were not fetched again


def test_amazon_reconcile_fetches_in_full_only_the_order_the_pull_missed(admin, uid):
    # Amazon lists partial orders: the reconciliation asks for getOrder + getOrderItems of the
    # missed one alone, not of the one stored at its listed version.
    state = amazon.AmazonState()
    with serve(amazon.make_app(state)) as url:
        code, stored, missed = f"amz-recon-{uid}".lower(), f"113-{uid[:7]}-0000001", f"113-{uid[:7]}-0000002"
        state.add_order(*amazon_order(stored, minutes_ago=10))
        create_channel(admin, code, "amazon", amazon_settings(url, state), syncFrom=_iso(timedelta(hours=6)))
        sync_until(admin, code, stored, timeout=40)
        state.add_order(*amazon_order(missed, minutes_ago=40))  # stamped behind the pull's cursor

        payload = admin.mutate("channelReconcile", RECONCILE, {"code": code, "since": _iso(timedelta(hours=2))})
        assert payload["userErrors"] == []

        summary = eventually(lambda: last_reconcile(admin, code), timeout=40)
        assert order_of(admin, code, missed) is not None
        assert (summary["listed"], summary["alreadyStored"], summary["newlyStored"], summary["failed"]) == (2, 1, 1, 0)
        assert [state.calls_of("getOrderItems", order_id) for order_id in (stored, missed)] == [1, 1]
        assert [state.calls_of("getOrder", order_id) for order_id in (stored, missed)] == [1, 1]


def test_channel_reconcile_refuses_a_future_since_and_an_unknown_channel(admin, uid):
    state = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(state)) as url:
        code = f"tb-recon-bad-{uid}".lower()
        create_channel(admin, code, "taobao", taobao_settings(url, state))

        future = admin.mutate("channelReconcile", RECONCILE, {"code": code, "since": _iso(-timedelta(hours=1))})
        unknown = admin.mutate("channelReconcile", RECONCILE, {"code": "no-such-channel", "since": None})

    assert [(e["field"], e["code"]) for e in future["userErrors"]] == [(["input", "since"], "INVALID")]
    assert [e["field"] for e in unknown["userErrors"]] == [["input", "channelCode"]]


def test_oms_channel_reconcile_shows_progress_and_a_summary(admin, uid, database_url):
    state = taobao.TaobaoState(load_samples=False)
    with serve(taobao.make_app(state)) as url:
        code, _recent = pulled_channel(admin, uid, state, url)
        missed = late_trades(state, 3, minutes_ago=30)
        env = {**os.environ, "OMS_DATABASE_URL": database_url, "OMS_BROKER_URL": "memory", "COLUMNS": "120"}

        done = subprocess.run(
            [sys.executable, "-m", "oms_graphql.cli", "channel", "reconcile", code, "--since", "5h"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        unknown = subprocess.run(
            [sys.executable, "-m", "oms_graphql.cli", "channel", "reconcile", "nope", "--since", "yesterday"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert done.returncode == 0, done.stderr
        assert f"Reconciling {code}" in done.stderr  # the progress bar
        assert "6 listed, 3 already stored, 3 newly stored" in done.stdout
        assert all(order_of(admin, code, tid) for tid in missed)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "--since 'yesterday'" in unknown.stderr


def test_each_channel_is_reconciled_once_per_interval_however_many_workers_ask(database_url, uid):
    async def scenario() -> tuple[list[int], list[int], list[int]]:
        database = Database(database_url)
        try:
            async with database.session() as session, session.begin():
                channel = Channel(code=f"recon-due-{uid}".lower(), name="due", kind="taobao", settings={})
                session.add(channel)
                await session.flush()
                channel_id = channel.id
            every = timedelta(hours=1)

            async def claim() -> list[int]:
                async with database.session() as session, session.begin():
                    due = await channel_sync.claim_due_reconciles(session, {"taobao"}, every)
                    return [found for found in due if found == channel_id]

            fresh = await claim()  # a new channel waits one interval: its first pull covers the window
            async with database.session() as session, session.begin():
                (await session.get(Channel, channel_id)).created_at = datetime.now(UTC) - timedelta(hours=2)
            first, second = await claim(), await claim()
            return fresh, first, second
        finally:
            await database.dispose()

    fresh, first, second = run_async(scenario())
    assert fresh == [] and len(first) == 1 and second == []
