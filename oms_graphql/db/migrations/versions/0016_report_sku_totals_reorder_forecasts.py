"""reports: per (day, SKU, category, currency) totals, the SKU table without channel and region;
per (day, category, channel, region, currency) sales, an order once per category; orders per
customer, day and category or channel (segment preferences);
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
    op.create_table(
        "report_customer_categories",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", "category", name=op.f("pk_report_customer_categories")),
    )
    op.create_table(
        "report_customer_channels",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", "channel_id", name=op.f("pk_report_customer_channels")),
    )
    _fill_derived()
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


def _fill_derived() -> None:
    """The new tables from the stored contributions, as facts.derived computes them: each order
    once per category of its "sku" entries, and per customer once per category and channel."""
    facts = sa.table("report_order_facts", sa.column("order_id", ID), sa.column("contribution", sa.JSON()))
    sums: dict[str, dict[tuple, list[int]]] = {"category": {}, "customer_category": {}, "customer_channel": {}}

    def add(table: str, key: tuple, *values: int) -> None:
        total = sums[table].setdefault(key, [0] * len(values))
        for index, value in enumerate(values):
            total[index] += value

    connection = op.get_bind()
    last = 0
    while facts_rows := connection.execute(
        sa.select(facts.c.order_id, facts.c.contribution)
        .where(facts.c.order_id > last)
        .order_by(facts.c.order_id)
        .limit(5000)
    ).all():
        for order_id, contribution in facts_rows:
            last = order_id
            contribution = contribution or {}
            seen: dict[tuple, list[int]] = {}
            for day, _sku, category, channel_id, region, currency, values in contribution.get("sku", []):
                entry = seen.setdefault((day, category, channel_id, region, currency), [1, 0, 0])
                entry[1] += int(values.get("units", 0))
                entry[2] += int(values.get("revenue_e4", 0))
            for key, values in seen.items():
                add("category", key, *values)
            channels = {entry[1] for entry in contribution.get("sales", [])}
            for customer_id, day, *_rest in contribution.get("customer", []):
                for category in {key[1] for key in seen}:
                    add("customer_category", (customer_id, day, category), 1)
                for channel_id in channels:
                    add("customer_channel", (customer_id, day, channel_id), 1)
    tables = {
        "category": (
            "report_daily_category_sales",
            ("day", "category", "channel_id", "region", "currency"),
            ("orders", "units", "revenue_e4"),
        ),
        "customer_category": ("report_customer_categories", ("customer_id", "day", "category"), ("orders",)),
        "customer_channel": ("report_customer_channels", ("customer_id", "day", "channel_id"), ("orders",)),
    }
    for name, (table_name, keys, counters) in tables.items():
        table = sa.table(table_name, *(sa.column(column) for column in (*keys, *counters)))
        rows: list[dict] = []
        for key, values in sums[name].items():
            row = dict(zip(keys, key, strict=True)) | dict(zip(counters, values, strict=True))
            row["day"] = date.fromisoformat(row["day"])
            rows.append(row)
        for start in range(0, len(rows), 1000):
            connection.execute(table.insert(), rows[start : start + 1000])


def downgrade() -> None:
    op.drop_table("reorder_forecasts")
    op.drop_table("report_customer_channels")
    op.drop_table("report_customer_categories")
    op.drop_table("report_daily_category_sales")
    op.drop_table("report_daily_sku_totals")
