"""resumable pulls: the window and page a pull has reached, its lease holder, reconciliation

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str) -> sa.Column:
    return sa.Column(name, oms_graphql.db.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("pull_lease_holder", sa.String(length=64), nullable=True))
        batch.add_column(_time("pull_window_after"))
        batch.add_column(_time("pull_window_before"))
        batch.add_column(sa.Column("pull_page", sa.Text(), nullable=True))
        batch.add_column(_time("reconciled_at"))
        batch.add_column(sa.Column("last_reconcile", sa.JSON(), nullable=True))
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(_time("channel_updated_at"))
        batch.add_column(_time("fetched_at"))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("fetched_at")
        batch.drop_column("channel_updated_at")
    with op.batch_alter_table("channels") as batch:
        for name in (
            "last_reconcile",
            "reconciled_at",
            "pull_page",
            "pull_window_before",
            "pull_window_after",
            "pull_lease_holder",
        ):
            batch.drop_column(name)
