"""reports: the daily stock aggregate (on hand change and units shipped per level and report
day) that inventoryKpis reads instead of the ledger, filled here from the ledger

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-01 19:00:00.000000
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from oms_graphql.config import get_settings

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0022"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "report_daily_stock",
        sa.Column("product_id", ID, nullable=False),
        sa.Column("location_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("on_hand_delta", sa.BigInteger(), nullable=False),
        sa.Column("units_shipped", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "location_id", "day", name=op.f("pk_report_daily_stock")),
    )
    zone = get_settings().report_timezone  # the days are cut as the running app cuts them
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The migration runs before the app writes stock, so no movement is missed.
        op.execute(
            sa.text(
                "INSERT INTO report_daily_stock (product_id, location_id, day, on_hand_delta, units_shipped)"
                " SELECT product_id, location_id, CAST(timezone(:zone, created_at) AS DATE), sum(on_hand_delta),"
                " sum(CASE WHEN reason = 'SHIP' THEN -on_hand_delta ELSE 0 END)"
                " FROM stock_movements WHERE on_hand_delta <> 0"
                " GROUP BY product_id, location_id, CAST(timezone(:zone, created_at) AS DATE)"
            ).bindparams(zone=zone)
        )
        return
    totals: dict[tuple[int, int, object], list[int]] = defaultdict(lambda: [0, 0])
    rows = bind.execute(
        sa.text(
            "SELECT product_id, location_id, reason, on_hand_delta, created_at FROM stock_movements"
            " WHERE on_hand_delta <> 0"
        )
    )
    local = ZoneInfo(zone)
    for product_id, location_id, reason, delta, created_at in rows:
        moment = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
        day = moment.replace(tzinfo=UTC).astimezone(local).date()
        total = totals[(product_id, location_id, day)]
        total[0] += delta
        total[1] += -delta if reason == "SHIP" else 0
    if totals:
        op.bulk_insert(
            table,
            [
                {"product_id": p, "location_id": loc, "day": day, "on_hand_delta": moved, "units_shipped": shipped}
                for (p, loc, day), (moved, shipped) in totals.items()
            ],
        )


def downgrade() -> None:
    op.drop_table("report_daily_stock")
