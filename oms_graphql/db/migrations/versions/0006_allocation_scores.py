"""allocation scores and drop-ship SKUs; promised ship-by; a shipment's packages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("allocations") as batch:
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("drop_ship", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("promised_ship_by", oms_graphql.db.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("packages", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("packages")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("promised_ship_by")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("drop_ship")
    with op.batch_alter_table("allocations") as batch:
        batch.drop_column("score")
