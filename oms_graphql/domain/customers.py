"""Customers: one profile per person across channels."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from sqlalchemy import and_, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Customer, CustomerIdentity
from oms_graphql.db.upsert import insert_or_skip


@dataclass(frozen=True)
class CustomerDetails:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    channel_code: str | None = None
    channel_buyer_id: str | None = None
    # ISO 3166-1 alpha-2 of the order's address: a national phone number is read in that country.
    country: str | None = None


def normalise_phone(phone: str | None, country: str | None = None) -> str | None:
    """The phone in E.164 (+8613800138000), a national number read in ``country``.

    None for no number, or a masked one (marketplaces send ``138****5678``): a masked
    number is nobody's identity. A number that is not a possible one where it is read
    keeps its digits (with its ``+``), so that it still matches itself written another way.
    """
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


# Gmail ignores dots in the local part and treats googlemail.com as gmail.com
# (https://support.google.com/mail/answer/7436150): one mailbox, one identity.
_GMAIL_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalise_email(email: str | None) -> str | None:
    """The mailbox an address reaches: lower case, without ``+tag``, Gmail without dots."""
    if not email or not email.strip():
        return None
    text = email.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return text
    local = local.split("+", 1)[0] or local
    if domain in _GMAIL_DOMAINS:
        domain = _GMAIL_DOMAINS[domain]
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


def _identities(details: CustomerDetails) -> list[tuple[str, str]]:
    keys = []
    if details.channel_code and details.channel_buyer_id:
        keys.append((f"buyer:{details.channel_code}", details.channel_buyer_id))
    if email := normalise_email(details.email):
        keys.append(("email", email))
    if phone := normalise_phone(details.phone, details.country):
        keys.append(("phone", phone))
    return keys


async def find_or_create_customer(session: AsyncSession, details: CustomerDetails) -> Customer | None:
    """The customer known by any of these identities, else a new one; None if no identity.

    The identities are listed in order of trust (channel buyer id, e-mail, phone):
    the first one already known decides who the customer is.
    """
    keys = _identities(details)
    if not keys and not details.name:
        return None
    if not keys:
        return await _find_or_create(session, details, keys)
    # Two orders of one new buyer ingested at once both find no identity and both add it:
    # the loser's insert fails on the unique identity, and a second look finds the winner's.
    for attempt in range(3):
        try:
            async with session.begin_nested():
                return await _find_or_create(session, details, keys)
        except IntegrityError:
            if attempt == 2:
                raise
    return None


async def _find_or_create(
    session: AsyncSession, details: CustomerDetails, keys: list[tuple[str, str]]
) -> Customer | None:
    owners: dict[tuple[str, str], int] = {}
    if keys:
        rows = await session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.value, CustomerIdentity.customer_id).where(
                or_(*(and_(CustomerIdentity.kind == kind, CustomerIdentity.value == value) for kind, value in keys))
            )
        )
        owners = {(kind, value): customer_id for kind, value, customer_id in rows}
    known_id = next((owners[key] for key in keys if key in owners), None)
    customer = await session.get(Customer, known_id) if known_id is not None else None
    # An identity read just as its profile was merged away still finds the person.
    for _ in range(5):
        if customer is None or customer.merged_into_id is None:
            break
        customer = await session.get(Customer, customer.merged_into_id)
    if customer is not None and customer.erased_at is not None:
        customer = None  # an erased person is never matched again
    if customer is None:
        customer = Customer(
            name=details.name,
            phone=normalise_phone(details.phone, details.country),
            email=_clean_email(details.email),
        )
        session.add(customer)
        await session.flush()
    else:
        customer.name = customer.name or details.name
        customer.phone = customer.phone or normalise_phone(details.phone, details.country)
        customer.email = customer.email or _clean_email(details.email)
    for kind, value in keys:
        # An identity another profile owns stays theirs (merging is an operator's decision).
        if (kind, value) not in owners:
            session.add(CustomerIdentity(customer_id=customer.id, kind=kind, value=value))
    await session.flush()
    return customer


def _clean_email(email: str | None) -> str | None:
    """The e-mail as the customer wrote it (lower case): ``a+shop@x.com`` is a real address to write to."""
    return email.strip().lower() if email and email.strip() else None


def identity_keys(details: CustomerDetails) -> list[tuple[str, str]]:
    """The (kind, value) identities these details stand for, most trusted first."""
    return _identities(details)


# --- many new buyers at once (a page of channel orders) ---------------------


class IdentityTaken(Exception):
    """A concurrent ingestion added one of these identities first: its buyer is someone now."""

    def __init__(self, keys: set[tuple[str, str]]) -> None:
        super().__init__(f"{len(keys)} identities were taken concurrently")
        self.keys = keys


async def known_identities(session: AsyncSession, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (kind, value) identities a customer has already, in one query."""
    if not keys:
        return set()
    rows = await session.execute(
        select(CustomerIdentity.kind, CustomerIdentity.value).where(
            tuple_(CustomerIdentity.kind, CustomerIdentity.value).in_(sorted(keys))
        )
    )
    return {(kind, value) for kind, value in rows}


async def create_customers(session: AsyncSession, people: list[CustomerDetails]) -> list[int]:
    """New customers for buyers of whom no identity is known yet (see :func:`known_identities`),
    with their identities, in two multi-row inserts; their ids, in order.

    Each identity must be in ``people`` once. Raises ``IdentityTaken`` (the caller rolls back
    its savepoint and finds those buyers one by one) when a concurrent transaction added one
    of them first: the unique (kind, value) key decides, and nothing is doubled.
    """
    if not people:
        return []
    ids = list(
        (
            await session.execute(
                insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [
                    {
                        "name": details.name,
                        "phone": normalise_phone(details.phone, details.country),
                        "email": _clean_email(details.email),
                    }
                    for details in people
                ],
            )
        ).scalars()
    )
    # In (kind, value) order, so two pages that share buyers take the keys in the same order.
    wanted = sorted(
        (
            (kind, value, customer_id)
            for details, customer_id in zip(people, ids, strict=True)
            for kind, value in _identities(details)
        ),
    )
    if wanted:
        added = await session.execute(
            insert_or_skip(session, CustomerIdentity, "kind", "value").returning(
                CustomerIdentity.kind, CustomerIdentity.value
            ),
            [{"kind": kind, "value": value, "customer_id": customer_id} for kind, value, customer_id in wanted],
        )
        taken = {(kind, value) for kind, value, _ in wanted} - {(kind, value) for kind, value in added}
        if taken:
            raise IdentityTaken(taken)
    return ids
