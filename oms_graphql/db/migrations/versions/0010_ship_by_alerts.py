"""when people were told a fulfillment order missed its ship-by date

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fulfillment_orders") as batch:
        batch.add_column(sa.Column("late_alerted_at", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fulfillment_orders") as batch:
        batch.drop_column("late_alerted_at")
