"""Customer profiles kept by hand: find (through merges), update, merge duplicates, erase.

A merged duplicate keeps its row with ``merged_into_id`` set and nothing else: every
order, address, identity and token moved to the profile it was merged into, and its id
still finds that profile. An erased profile keeps its orders (accounting needs them) but
none of its personal data, and is never matched again: its identities are gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Address, ApiToken, Customer, CustomerIdentity, Order, utcnow
from oms_graphql.domain.customers import normalise_email, normalise_phone
from oms_graphql.domain.errors import DomainError, NotFound, Problems
from oms_graphql.domain.reports import request_refresh

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# An erased street line: the column is required, and an empty line reads back as what it is.
ERASED_LINE = ""


class CustomerErased(DomainError):
    code = "CUSTOMER_ERASED"


@dataclass(frozen=True)
class CustomerChanges:
    """What customerUpdate changes; None leaves a field as it is, "" clears a text field."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    tags: list[str] | None = None
    note: str | None = None


async def customer_by_id(session: AsyncSession, customer_id: int, field: tuple[str, ...] = ("id",)) -> Customer:
    """The profile ``customer_id`` stands for: itself, or the one it was merged into."""
    customer = await session.get(Customer, customer_id)
    seen = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = await session.get(Customer, customer.merged_into_id)
    if customer is None:
        raise NotFound(f"No customer has id {customer_id}.", field)
    return customer


async def _latest_country(session: AsyncSession, customer_id: int) -> str | None:
    """The country of the customer's latest order address: where a national phone number is read."""
    return await session.scalar(  # type: ignore[no-any-return]
        select(Address.country)
        .join(Order, Order.shipping_address_id == Address.id)
        .where(Order.customer_id == customer_id)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(1)
    )


async def update_customer(session: AsyncSession, customer_id: int, changes: CustomerChanges) -> Customer:
    """Change a profile; a new phone or e-mail replaces the old one's identity.

    A phone or e-mail that already identifies another profile is refused: the two are one
    person, which is what customerMerge is for.
    """
    customer = await customer_by_id(session, customer_id)
    if customer.erased_at is not None:
        raise CustomerErased("This customer's personal data was erased; a profile cannot be refilled.", ("id",))
    problems = Problems()
    problems.text(("name",), changes.name, 200)
    problems.text(("phone",), changes.phone, 40)
    problems.text(("email",), changes.email, 254)
    problems.text(("note",), changes.note, 2000)
    phone = email = None
    if changes.phone:
        phone = normalise_phone(changes.phone, await _latest_country(session, customer.id))
        if phone is None or len(phone.lstrip("+")) < 5:
            problems.add(("phone",), f"{changes.phone!r} is not a phone number (masked numbers are not kept).")
    if changes.email:
        email = normalise_email(changes.email)
        local, at, domain = changes.email.strip().rpartition("@")
        if not (local and at and "." in domain) or any(ch.isspace() for ch in changes.email.strip()):
            problems.add(("email",), f"{changes.email!r} is not an e-mail address.")
    tags: list[str] | None = None
    if changes.tags is not None:
        tags = list(dict.fromkeys(tag.strip() for tag in changes.tags if tag.strip()))
        if len(tags) > MAX_TAGS:
            problems.add(("tags",), f"At most {MAX_TAGS} tags (got {len(tags)}).", "TOO_MANY")
        for index, tag in enumerate(tags):
            if len(tag) > MAX_TAG_LENGTH:
                problems.add(("tags", index), f"A tag is at most {MAX_TAG_LENGTH} characters.", "TOO_LONG")
    problems.raise_if_any()
    for kind, value, field in (("phone", phone, "phone"), ("email", email, "email")):
        if value is None:
            continue
        owner = await session.scalar(
            select(CustomerIdentity.customer_id).where(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
        )
        if owner is not None and owner != customer.id:
            problems.add(
                (field,),
                f"This {'phone' if kind == 'phone' else 'e-mail'} already identifies another customer "
                f"(id {owner}): if they are one person, merge the two with customerMerge.",
                "DUPLICATE",
            )
    problems.raise_if_any()

    if changes.name is not None:
        customer.name = changes.name.strip() or None
    if changes.phone is not None:
        await _replace_identity(session, customer, "phone", customer.phone, phone)
        customer.phone = phone
    if changes.email is not None:
        await _replace_identity(session, customer, "email", normalise_email(customer.email), email)
        customer.email = changes.email.strip().lower() or None
    if tags is not None:
        customer.tags = tags
    if changes.note is not None:
        customer.note = changes.note.strip() or None
    await session.flush()
    return customer


async def _replace_identity(
    session: AsyncSession, customer: Customer, kind: str, old: str | None, new: str | None
) -> None:
    if old is not None and old != new:
        await session.execute(
            delete(CustomerIdentity).where(
                CustomerIdentity.customer_id == customer.id,
                CustomerIdentity.kind == kind,
                CustomerIdentity.value == old,
            )
        )
    if new is not None and not await session.scalar(
        select(exists().where(CustomerIdentity.kind == kind, CustomerIdentity.value == new))
    ):
        session.add(CustomerIdentity(customer_id=customer.id, kind=kind, value=new))


async def merge_customers(session: AsyncSession, customer_id: int, duplicate_id: int) -> Customer:
    """Fold ``duplicate_id`` into ``customer_id``: its orders, addresses, identities and tokens move.

    The duplicate's row stays, empty, with ``merged_into_id`` set, so its old id still finds
    the person. The caller's transaction makes it all or nothing.
    """
    # Both rows locked in id order: two merges of the same pair at once wait for each other
    # instead of deadlocking or each folding one into the other.
    for key in sorted({customer_id, duplicate_id}):
        await session.execute(select(Customer.id).where(Customer.id == key).with_for_update())
    customer = await customer_by_id(session, customer_id, ("id",))
    duplicate = await customer_by_id(session, duplicate_id, ("duplicateId",))
    if customer.id == duplicate.id:
        raise DomainError(
            "A customer cannot be merged into itself: give the id of the duplicate profile as duplicateId.",
            ("duplicateId",),
            "SAME_CUSTOMER",
        )
    for profile, field in ((customer, "id"), (duplicate, "duplicateId")):
        if profile.erased_at is not None:
            raise CustomerErased(
                "This customer's personal data was erased: its orders stay anonymous and are not merged.", (field,)
            )
    moved = {"customer_id": customer.id}
    # The reports count customers by id (RFM, cohorts): each moved order's figures move with it.
    for order_id in await session.scalars(select(Order.id).where(Order.customer_id == duplicate.id)):
        request_refresh(session, order_id)
    await session.execute(update(Order).where(Order.customer_id == duplicate.id).values(**moved))
    await session.execute(update(Address).where(Address.customer_id == duplicate.id).values(**moved))
    await session.execute(update(CustomerIdentity).where(CustomerIdentity.customer_id == duplicate.id).values(**moved))
    await session.execute(update(ApiToken).where(ApiToken.customer_id == duplicate.id).values(**moved))
    # Profiles merged into the duplicate earlier now point at the survivor directly.
    await session.execute(
        update(Customer).where(Customer.merged_into_id == duplicate.id).values(merged_into_id=customer.id)
    )
    customer.name = customer.name or duplicate.name
    customer.phone = customer.phone or duplicate.phone
    customer.email = customer.email or duplicate.email
    customer.tags = list(dict.fromkeys([*(customer.tags or []), *(duplicate.tags or [])]))[:MAX_TAGS]
    notes = [note for note in (customer.note, duplicate.note) if note]
    customer.note = "\n".join(notes)[:2000] or None
    duplicate.merged_into_id = customer.id
    duplicate.name = duplicate.phone = duplicate.email = duplicate.note = None
    duplicate.tags = []
    await session.flush()
    return customer


async def erase_customer(session: AsyncSession, customer_id: int) -> Customer:
    """Anonymise a profile for good: its name, phone, e-mail, note, tags and identities, and the
    name, phone, e-mail, street lines and coordinates of its addresses (its orders' included).

    Orders, their totals and lines, returns, refunds and the stock ledger stay: accounting
    needs them, and they say nothing about who the person was. The customer's tokens are
    revoked. A second erase is refused (there is nothing left to erase).
    """
    customer = await customer_by_id(session, customer_id)
    if customer.erased_at is not None:
        raise CustomerErased("This customer was erased already; it cannot be undone or done again.", ("id",))
    now = utcnow()
    order_addresses = select(Order.shipping_address_id).where(Order.customer_id == customer.id)
    await session.execute(
        update(Address)
        .where(or_(Address.customer_id == customer.id, Address.id.in_(order_addresses)))
        .values(name=None, phone=None, email=None, line1=ERASED_LINE, line2=None, latitude=None, longitude=None)
    )
    await session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id == customer.id))
    await session.execute(
        update(ApiToken)
        .where(ApiToken.customer_id == customer.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    customer.name = customer.phone = customer.email = customer.note = None
    customer.tags = []
    customer.erased_at = now
    await session.flush()
    return customer


def customer_search(text: str) -> ColumnElement[bool]:
    """Profiles whose name, e-mail or phone (written any way) contains ``text``."""
    text = text.strip()
    pattern = _like(text.lower())
    conditions: list[ColumnElement[bool]] = [
        func.lower(Customer.name).like(pattern, escape="\\"),
        func.lower(Customer.email).like(pattern, escape="\\"),
    ]
    if email := normalise_email(text) if "@" in text else None:
        conditions.append(
            Customer.id.in_(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == "email", CustomerIdentity.value == email
                )
            )
        )
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 3 and all(ch.isdigit() or ch in "+-() ." for ch in text):
        # Stored phones are E.164: "138 0013 8000" is found in "+8613800138000" by its digits.
        # A leading 0 is a national trunk prefix, not part of the stored number.
        number = _like(digits.lstrip("0") or digits)
        conditions.append(Customer.phone.like(number, escape="\\"))
        conditions.append(
            Customer.id.in_(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.kind == "phone", CustomerIdentity.value.like(number, escape="\\")
                )
            )
        )
    return or_(*conditions)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
