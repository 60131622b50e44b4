"""reports: per (day, SKU, category, currency) totals, the SKU table without channel and region;
per (day, category, channel, region, currency) sales, an order once per category;
the stored reorder forecast per SKU and location that low-stock alerts and transferSuggest read

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 15:40:00.000000
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_daily_sku_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue_e4", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "sku", "category", "currency", name=op.f("pk_report_daily_sku_totals")),
    )
    # The stored contributions already hold these figures (the totals are derived from their
    # "sku" entries when applied), so summing the detailed table keeps every order's
    # contribution and the tables in step without a rebuild.
    op.execute(
        "INSERT INTO report_daily_sku_totals (day, sku, category, currency, orders, units, revenue_e4)"
        " SELECT day, sku, category, currency, sum(orders), sum(units), sum(revenue_e4)"
        " FROM report_daily_sku_sales GROUP BY day, sku, category, currency"
    )
    op.create_table(
        "report_daily_category_sales",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("revenue_e4", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "category", "channel_id", "region", "currency", name=op.f("pk_report_daily_category_sales")
        ),
    )
    _fill_categories()
    op.create_table(
        "reorder_forecasts",
        sa.Column("product_id", ID, nullable=False),
        sa.Column("location_id", ID, nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("daily_demand", sa.Float(), nullable=False),
        sa.Column("demand", sa.Float(), nullable=False),
        sa.Column("safety_stock", sa.Float(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("computed_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], name=op.f("fk_reorder_forecasts_product_id_products")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_reorder_forecasts_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("product_id", "location_id", name=op.f("pk_reorder_forecasts")),
    )


def _fill_categories() -> None:
    """Each order once per category of its stored "sku" entries (as facts.derived does)."""
    facts = sa.table("report_order_facts", sa.column("order_id", ID), sa.column("contribution", sa.JSON()))
    categories = sa.table(
        "report_daily_category_sales",
        *(sa.column(name) for name in ("day", "category", "channel_id", "region", "currency")),
        *(sa.column(name) for name in ("orders", "units", "revenue_e4")),
    )
    connection = op.get_bind()
    sums: dict[tuple, list[int]] = {}
    last = 0
    while True:
        rows = connection.execute(
            sa.select(facts.c.order_id, facts.c.contribution)
            .where(facts.c.order_id > last)
            .order_by(facts.c.order_id)
            .limit(5000)
        ).all()
        if not rows:
            break
        for order_id, contribution in rows:
            last = order_id
            seen: dict[tuple, list[int]] = {}
            for day, _sku, category, channel_id, region, currency, values in (contribution or {}).get("sku", []):
                entry = seen.setdefault((day, category, channel_id, region, currency), [1, 0, 0])
                entry[1] += int(values.get("units", 0))
                entry[2] += int(values.get("revenue_e4", 0))
            for key, (orders, units, revenue) in seen.items():
                total = sums.setdefault(key, [0, 0, 0])
                total[0], total[1], total[2] = total[0] + orders, total[1] + units, total[2] + revenue
    names = ("day", "category", "channel_id", "region", "currency")
    values = [
        {
            **dict(zip(names, (date.fromisoformat(key[0]), *key[1:]), strict=True)),
            "orders": o,
            "units": u,
            "revenue_e4": r,
        }
        for key, (o, u, r) in sums.items()
    ]
    for start in range(0, len(values), 1000):
        connection.execute(categories.insert(), values[start : start + 1000])


def downgrade() -> None:
    op.drop_table("reorder_forecasts")
    op.drop_table("report_daily_category_sales")
    op.drop_table("report_daily_sku_totals")
