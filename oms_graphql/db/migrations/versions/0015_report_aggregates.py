"""reports: per-order contributions and the daily aggregate tables built from them

Revision ID: 0015
Revises: 0007
Create Date: 2026-12-01 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0015"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = oms_graphql.db.types.UTCDateTime(timezone=True)


def _counts(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "report_order_facts",
        sa.Column("order_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("location_id", ID, nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("seconds_to_ship", sa.BigInteger(), nullable=True),
        sa.Column("seconds_to_deliver", sa.BigInteger(), nullable=True),
        sa.Column("contribution", sa.JSON(), nullable=False),
        sa.Column("refreshed_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_report_order_facts_order_id_orders")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_report_order_facts")),
    )
    op.create_index(op.f("ix_report_order_facts_day"), "report_order_facts", ["day"], unique=False)
    op.create_table(
        "report_daily_sales",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *_counts("orders", "units", "revenue_e4"),
        sa.PrimaryKeyConstraint("day", "channel_id", "region", "currency", name=op.f("pk_report_daily_sales")),
    )
    op.create_table(
        "report_daily_sku_sales",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *_counts("orders", "units", "revenue_e4"),
        sa.PrimaryKeyConstraint(
            "day", "sku", "category", "channel_id", "region", "currency", name=op.f("pk_report_daily_sku_sales")
        ),
    )
    op.create_table(
        "report_daily_fulfillment",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("location_id", ID, nullable=False),
        *_counts(
            "orders_all",
            "orders_cancelled",
            "orders_completed",
            "orders_shipped",
            "orders_split",
            "units_shipped",
            "units_returned",
            "shipments_dispatched",
            "shipments_late",
            "ship_seconds",
            "ship_count",
            "deliver_seconds",
            "deliver_count",
        ),
        sa.PrimaryKeyConstraint("day", "channel_id", "location_id", name=op.f("pk_report_daily_fulfillment")),
    )
    op.create_table(
        "report_customer_days",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *_counts("orders", "revenue_e4"),
        sa.PrimaryKeyConstraint("customer_id", "day", "currency", name=op.f("pk_report_customer_days")),
    )


def downgrade() -> None:
    op.drop_table("report_customer_days")
    op.drop_table("report_daily_fulfillment")
    op.drop_table("report_daily_sku_sales")
    op.drop_table("report_daily_sales")
    op.drop_index(op.f("ix_report_order_facts_day"), table_name="report_order_facts")
    op.drop_table("report_order_facts")
