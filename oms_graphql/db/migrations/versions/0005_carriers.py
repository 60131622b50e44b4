"""carriers: configured carrier accounts (SF, EasyPost, Kuaidi100, pickup, fleet…); tracking events keep
the carrier's own code

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secrets_encrypted", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
        sa.UniqueConstraint("code", name=op.f("uq_carriers_code")),
    )
    with op.batch_alter_table("shipment_events") as batch:
        batch.add_column(sa.Column("carrier_code", sa.String(length=64), nullable=True))
    op.create_index("ix_shipments_tracking_number", "shipments", ["tracking_number"])
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("option_reason", sa.String(length=1000), nullable=True))
        batch.add_column(sa.Column("carrier_reference", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("tracked_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("late_alerted_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("locations") as batch:
        batch.add_column(sa.Column("auto_dispatch", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "shipment_labels",
        sa.Column("shipment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_shipment_labels_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("shipment_id", name=op.f("pk_shipment_labels")),
    )


def downgrade() -> None:
    op.drop_table("shipment_labels")
    with op.batch_alter_table("locations") as batch:
        batch.drop_column("auto_dispatch")
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("late_alerted_at")
        batch.drop_column("tracked_at")
        batch.drop_column("carrier_reference")
        batch.drop_column("option_reason")
    op.drop_index("ix_shipments_tracking_number", table_name="shipments")
    with op.batch_alter_table("shipment_events") as batch:
        batch.drop_column("carrier_code")
    op.drop_table("carriers")
