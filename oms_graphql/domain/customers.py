"""Customers: one profile per person across channels."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Buyers:
    """Who each buyer of a page is, worked out as :func:`find_or_create_customer` would one
    after the other: ``who[i]`` is a customer's id, ``-n`` for the page's n-th new customer,
    or None (nobody to record); ``skipped`` buyers are left to ``find_or_create_customer``."""

    who: list[int | None] = field(default_factory=list)
    skipped: set[int] = field(default_factory=set)
    new_customers: list[dict[str, str | None]] = field(default_factory=list)
    new_identities: list[tuple[str, str, int]] = field(default_factory=list)


async def plan_buyers(session: AsyncSession, people: list[CustomerDetails | None]) -> Buyers:
    """Match a page's buyers to customers in two queries (their identities, those customers).

    A buyer whose profile was merged or erased, or who would add details to an existing
    profile, is skipped (the one-by-one path knows those rules), and so is every later
    buyer who shares an identity with a skipped one, so the order of events is kept.
    """
    keys_of = [_identities(details) if details else [] for details in people]
    every = {key for keys in keys_of for key in keys}
    owners: dict[tuple[str, str], int] = {}
    if every:
        rows = await session.execute(
            select(CustomerIdentity.kind, CustomerIdentity.value, CustomerIdentity.customer_id).where(
                tuple_(CustomerIdentity.kind, CustomerIdentity.value).in_(sorted(every))
            )
        )
        owners = {(kind, value): customer_id for kind, value, customer_id in rows}
    known = (
        {c.id: c for c in (await session.scalars(select(Customer).where(Customer.id.in_(set(owners.values())))))}
        if owners
        else {}
    )
    plan = Buyers()
    tainted: set[tuple[str, str]] = set()
    for index, (details, keys) in enumerate(zip(people, keys_of, strict=True)):
        if details is None or (not keys and not details.name):
            plan.who.append(None)
            continue
        phone, email = normalise_phone(details.phone, details.country), _clean_email(details.email)
        found = next((owners[key] for key in keys if key in owners), None)
        customer = known.get(found) if found is not None and found > 0 else None
        if set(keys) & tainted or (
            customer is not None
            and (
                customer.merged_into_id is not None
                or customer.erased_at is not None
                or (details.name and not customer.name)
                or (phone and not customer.phone)
                or (email and not customer.email)
            )
        ):
            plan.skipped.add(index)
            plan.who.append(None)
            tainted |= set(keys)
            continue
        if found is None:
            plan.new_customers.append({"name": details.name, "phone": phone, "email": email})
            found = -len(plan.new_customers)
        elif found < 0:
            row = plan.new_customers[-found - 1]
            row["name"], row["phone"], row["email"] = (
                row["name"] or details.name,
                row["phone"] or phone,
                row["email"] or email,
            )
        for kind, value in keys:
            if (kind, value) not in owners:
                owners[(kind, value)] = found
                plan.new_identities.append((kind, value, found))
        plan.who.append(found)
    return plan


async def add_buyers(session: AsyncSession, plan: Buyers) -> list[int | None]:
    """Insert the plan's new customers and identities (two multi-row inserts); each planned
    buyer's customer id, in order (None for nobody, and for the skipped).

    Raises ``IdentityTaken`` (the caller rolls back its savepoint and leaves those buyers to
    the one-by-one path) when a concurrent transaction added one of the identities first:
    the unique (kind, value) key decides, and nothing is doubled.
    """
    ids: list[int] = []
    if plan.new_customers:
        ids = list(
            (
                await session.execute(
                    insert(Customer).returning(Customer.id, sort_by_parameter_order=True), plan.new_customers
                )
            ).scalars()
        )

    def real(ref: int) -> int:
        return ids[-ref - 1] if ref < 0 else ref

    if plan.new_identities:
        # In (kind, value) order, so two pages that share buyers take the keys in the same order.
        wanted = sorted((kind, value, real(ref)) for kind, value, ref in plan.new_identities)
        added = await session.execute(
            insert_or_skip(session, CustomerIdentity, "kind", "value").returning(
                CustomerIdentity.kind, CustomerIdentity.value
            ),
            [{"kind": kind, "value": value, "customer_id": customer_id} for kind, value, customer_id in wanted],
        )
        taken = {(kind, value) for kind, value, _ in wanted} - {(kind, value) for kind, value in added}
        if taken:
            raise IdentityTaken(taken)
    return [None if ref is None else real(ref) for ref in plan.who]
