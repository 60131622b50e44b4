"""returns, their lines and refunds; returned units per order line and refunded total per order

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMOUNT = oms_graphql.db.types.Amount()
TIME = oms_graphql.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "returns",
        sa.Column("id", ID, nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("reject_reason", sa.String(length=1000), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("replacement_order_id", ID, nullable=True),
        sa.Column("refund_total", AMOUNT, nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["replacement_order_id"], ["orders.id"], name=op.f("fk_returns_replacement_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("number", name=op.f("uq_returns_number")),
        sa.UniqueConstraint("order_id", "external_id", name=op.f("uq_returns_order_id")),
    )
    op.create_index(op.f("ix_returns_order_id"), "returns", ["order_id"])
    op.create_table(
        "return_lines",
        sa.Column("id", ID, nullable=False),
        sa.Column("return_id", ID, nullable=False),
        sa.Column("order_line_id", ID, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("resellable_quantity", sa.Integer(), nullable=False),
        sa.Column("damaged_quantity", sa.Integer(), nullable=False),
        sa.Column("missing_quantity", sa.Integer(), nullable=False),
        sa.Column("restock_location_id", ID, nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_lines_quantity_positive")),
        sa.CheckConstraint(
            "resellable_quantity >= 0 AND damaged_quantity >= 0 AND missing_quantity >= 0 AND "
            "resellable_quantity + damaged_quantity + missing_quantity <= quantity",
            name=op.f("ck_return_lines_received_within"),
        ),
        sa.ForeignKeyConstraint(["return_id"], ["returns.id"], name=op.f("fk_return_lines_return_id_returns")),
        sa.ForeignKeyConstraint(
            ["order_line_id"], ["order_lines.id"], name=op.f("fk_return_lines_order_line_id_order_lines")
        ),
        sa.ForeignKeyConstraint(
            ["restock_location_id"], ["locations.id"], name=op.f("fk_return_lines_restock_location_id_locations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_return_lines")),
    )
    op.create_index(op.f("ix_return_lines_return_id"), "return_lines", ["return_id"])
    op.create_index(op.f("ix_return_lines_order_line_id"), "return_lines", ["order_line_id"])
    op.create_table(
        "refunds",
        sa.Column("id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("return_id", ID, nullable=True),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")),
        sa.ForeignKeyConstraint(["return_id"], ["returns.id"], name=op.f("fk_refunds_return_id_returns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    op.create_index(op.f("ix_refunds_order_id"), "refunds", ["order_id"])
    op.create_index(op.f("ix_refunds_return_id"), "refunds", ["return_id"])
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("returned_quantity", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("refunded_total", AMOUNT, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("refunded_total")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("returned_quantity")
    op.drop_table("refunds")
    op.drop_table("return_lines")
    op.drop_table("returns")
