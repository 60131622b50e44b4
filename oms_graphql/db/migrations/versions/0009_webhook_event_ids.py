"""the sender's event id of a pushed webhook, unique per source: replays are refused

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-01 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("event_id", sa.String(length=200), nullable=True))
    # NULLs are distinct in a unique index (PostgreSQL and SQLite): only messages with an id are checked.
    op.create_index("ux_inbound_messages_event", "inbound_messages", ["source", "kind", "event_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_inbound_messages_event", table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("event_id")
