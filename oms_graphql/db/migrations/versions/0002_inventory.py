"""inventory: channel stock push bookkeeping, transfer statuses, recent-sales index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stock_levels") as batch:
        batch.add_column(sa.Column("sync_version", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("synced_version", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("transfers") as batch:
        batch.alter_column(
            "status", type_=sa.String(length=20), existing_type=sa.String(length=16), existing_nullable=False
        )
    op.create_index("ix_allocations_product_created", "allocations", ["product_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_allocations_product_created", table_name="allocations")
    with op.batch_alter_table("transfers") as batch:
        batch.alter_column(
            "status", type_=sa.String(length=16), existing_type=sa.String(length=20), existing_nullable=False
        )
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_column("synced_version")
        batch.drop_column("sync_version")
