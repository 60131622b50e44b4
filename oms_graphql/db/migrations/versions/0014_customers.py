"""customer profiles: tags, note, merged_into_id, erased_at; phone and e-mail identities re-normalised

Stored phone identities become E.164 (a national number read in the country of the
customer's latest order address) and e-mail identities lose case, ``+tag`` and Gmail dots,
so that an old profile is found by a new order written the new way. An identity that
becomes one already stored in that form is dropped (the profiles stay apart: merging is
an operator's decision, with customerMerge); so is a masked phone.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 13:10:00.000000
"""

from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import op

import oms_graphql.db.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = oms_graphql.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("note", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("merged_into_id", ID, nullable=True))
        batch.add_column(sa.Column("erased_at", TIME, nullable=True))
        batch.create_foreign_key(op.f("fk_customers_merged_into_id_customers"), "customers", ["merged_into_id"], ["id"])
        batch.create_index(op.f("ix_customers_merged_into_id"), ["merged_into_id"])
    _renormalise_identities()


def _renormalise_identities() -> None:
    connection = op.get_bind()
    countries: dict[int, str] = dict(
        connection.execute(
            sa.text(
                "SELECT o.customer_id, a.country FROM orders o JOIN addresses a ON a.id = o.shipping_address_id "
                "WHERE o.customer_id IS NOT NULL ORDER BY o.placed_at, o.id"
            )
        ).all()
    )  # the latest order's country wins
    rows = connection.execute(sa.text("SELECT id, customer_id, kind, value FROM customer_identities ORDER BY id")).all()
    taken = {(kind, value) for _id, _customer, kind, value in rows}
    for identity_id, customer_id, kind, value in rows:
        if kind == "phone":
            new = normalise_phone(value, countries.get(customer_id))
        elif kind == "email":
            new = normalise_email(value)
        else:
            continue
        if new == value:
            continue
        if new is None or (kind, new) in taken:
            connection.execute(sa.text("DELETE FROM customer_identities WHERE id = :id"), {"id": identity_id})
            continue
        connection.execute(
            sa.text("UPDATE customer_identities SET value = :value WHERE id = :id"), {"value": new, "id": identity_id}
        )
        taken.add((kind, new))
    for customer_id, phone in connection.execute(
        sa.text("SELECT id, phone FROM customers WHERE phone IS NOT NULL")
    ).all():
        new = normalise_phone(phone, countries.get(customer_id))
        if new != phone:
            connection.execute(
                sa.text("UPDATE customers SET phone = :phone WHERE id = :id"), {"phone": new, "id": customer_id}
            )


# The rules of domain/customers.py as of this revision, frozen here: a migration must mean
# the same thing whenever it runs (and db/ may not import the domain).
def normalise_phone(phone: str | None, country: str | None) -> str | None:
    if not phone or "*" in phone:
        return None
    kept = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    if not any(ch.isdigit() for ch in kept):
        return None
    region = country.upper() if country and len(country) == 2 else None
    try:
        parsed = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return "+" + kept.lstrip("+") if kept.startswith("+") else kept


def normalise_email(email: str | None) -> str | None:
    if not email or not email.strip():
        return None
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local or not domain:
        return email.strip().lower()
    local = local.split("+", 1)[0] or local
    if domain in ("gmail.com", "googlemail.com"):
        domain, local = "gmail.com", local.replace(".", "") or local
    return f"{local}@{domain}"


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index(op.f("ix_customers_merged_into_id"))
        batch.drop_constraint(op.f("fk_customers_merged_into_id_customers"), type_="foreignkey")
        batch.drop_column("erased_at")
        batch.drop_column("merged_into_id")
        batch.drop_column("note")
        batch.drop_column("tags")
