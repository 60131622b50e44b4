"""channels: sync bookkeeping, stock push state, inbound digests, shipment confirmation, leases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str) -> sa.Column:
    return sa.Column(name, oms_graphql.db.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(_time("pull_lease_until"))
        batch.add_column(_time("last_pulled_at"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(_time("last_error_at"))
        batch.add_column(_time("stock_push_due_at"))
    with op.batch_alter_table("channel_listings") as batch:
        batch.add_column(_time("push_requested_at"))
        batch.add_column(sa.Column("pushed_quantity", sa.Integer(), nullable=True))
        batch.add_column(_time("pushed_at"))
        batch.add_column(sa.Column("push_error", sa.Text(), nullable=True))
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=300), nullable=True))
        batch.add_column(_time("queued_at"))
        batch.create_foreign_key("fk_inbound_messages_order_id_orders", "orders", ["order_id"], ["id"])
    op.create_index("ix_inbound_messages_source_external", "inbound_messages", ["source", "external_id"])
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(_time("channel_confirmed_at"))
        batch.add_column(sa.Column("channel_confirm_attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("channel_confirm_error", sa.Text(), nullable=True))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("channel_confirm_error")
        batch.drop_column("channel_confirm_attempts")
        batch.drop_column("channel_confirmed_at")
    op.drop_index("ix_inbound_messages_source_external", table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_constraint("fk_inbound_messages_order_id_orders", type_="foreignkey")
        batch.drop_column("queued_at")
        batch.drop_column("outcome")
        batch.drop_column("order_id")
        batch.drop_column("digest")
    with op.batch_alter_table("channel_listings") as batch:
        batch.drop_column("push_error")
        batch.drop_column("pushed_at")
        batch.drop_column("pushed_quantity")
        batch.drop_column("push_requested_at")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("stock_push_due_at")
        batch.drop_column("last_error_at")
        batch.drop_column("last_error")
        batch.drop_column("last_pulled_at")
        batch.drop_column("pull_lease_until")
