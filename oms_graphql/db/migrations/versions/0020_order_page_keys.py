"""orders: indexes on the order pages' sort keys, for keyset pagination

The orders connection pages by key ((placed_at, id), (total, id), number) instead of by
offset, so each page is one index range scan however deep it is. (placed_at, id) replaces
the index on placed_at alone, which it covers.

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-01 16:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_placed_id", "orders", ["placed_at", "id"])
    op.create_index("ix_orders_total_id", "orders", ["total", "id"])
    op.drop_index("ix_orders_placed", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_placed", "orders", ["placed_at"])
    op.drop_index("ix_orders_total_id", table_name="orders")
    op.drop_index("ix_orders_placed_id", table_name="orders")
