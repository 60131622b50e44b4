"""CHECK constraints: stock figures fit GraphQL's Int, amounts stay within 10^12

The last line behind oms_graphql/domain/limits.py, which refuses such input with a
userError first. A SQLite database written before this revision may hold a product
price that cannot be read back (e.g. '1E+999', which made every `products { price }`
fail): such prices are cleared, since no reader could use them.

Revision ID: 0007
Revises: 0014 (written against 0006; chained after the migrations merged before it)
Create Date: 2026-12-01 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_INT = 2_147_483_647
INTS = {
    "stock_levels": ("on_hand", "reserved", "in_transit", "safety_stock", "reorder_point", "reorder_quantity"),
    "stock_movements": ("on_hand_delta", "reserved_delta", "in_transit_delta"),
    "order_lines": ("quantity",),
}
AMOUNTS = {
    "products": ("price_amount",),
    "orders": ("subtotal", "discount", "shipping_fee", "tax", "total"),
    "order_lines": ("unit_price", "discount"),
}


def _amount_check(column: str) -> str:
    return f"CAST({column} AS REAL) BETWEEN -1e12 AND 1e12"


def upgrade() -> None:
    op.execute(sa.text(f"UPDATE products SET price_amount = NULL WHERE NOT ({_amount_check('price_amount')})"))
    for table in sorted(set(INTS) | set(AMOUNTS)):
        with op.batch_alter_table(table) as batch:
            for column in INTS.get(table, ()):
                batch.create_check_constraint(
                    op.f(f"ck_{table}_{column}_within_int"), f"{column} BETWEEN -{MAX_INT} AND {MAX_INT}"
                )
            for column in AMOUNTS.get(table, ()):
                batch.create_check_constraint(op.f(f"ck_{table}_{column}_within_limit"), _amount_check(column))


def downgrade() -> None:
    for table in sorted(set(INTS) | set(AMOUNTS)):
        with op.batch_alter_table(table) as batch:
            for column in INTS.get(table, ()):
                batch.drop_constraint(op.f(f"ck_{table}_{column}_within_int"), type_="check")
            for column in AMOUNTS.get(table, ()):
                batch.drop_constraint(op.f(f"ck_{table}_{column}_within_limit"), type_="check")
