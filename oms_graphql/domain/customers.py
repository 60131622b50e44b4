"""Customers: one profile per person across channels."""

from __future__ import annotations

from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import ARRAY, DateTime, String, TextClause, and_, bindparam, delete, insert, or_, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import Customer, CustomerIdentity, utcnow
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


# find_or_create_customer's rules in one PostgreSQL statement (order entry's round trips):
# the identities' owners, the first one's profile followed along merges (5 at most), and an
# erased profile never matched; then the new identities, the new profile or the details its
# profile lacked. The identities are inserted first, for a profile id drawn beforehand
# (foreign keys are checked at the end of the statement): a key a concurrent order of the
# same new buyer holds makes this insert wait for it and skip the key, so no profile is made
# for it; ``taken`` counts such keys.
_FIND_OR_CREATE_CUSTOMER: TextClause = text(
    """
WITH RECURSIVE
keys AS (SELECT * FROM unnest(CAST(:kinds AS varchar[]), CAST(:values AS varchar[]))
         WITH ORDINALITY AS k (kind, value, trust)),
owned AS (SELECT keys.trust, i.customer_id FROM keys
          JOIN customer_identities AS i ON i.kind = keys.kind AND i.value = keys.value),
chain (id, merged_into_id, erased_at, hops) AS (
    SELECT id, merged_into_id, erased_at, 0 FROM customers
    WHERE id = (SELECT customer_id FROM owned ORDER BY trust LIMIT 1)
    UNION ALL
    SELECT c.id, c.merged_into_id, c.erased_at, chain.hops + 1 FROM chain
    JOIN customers AS c ON c.id = chain.merged_into_id WHERE chain.hops < 5),
known AS (SELECT id FROM (SELECT id, erased_at FROM chain ORDER BY hops DESC LIMIT 1) AS last
          WHERE erased_at IS NULL),
fresh AS (SELECT nextval(pg_get_serial_sequence('customers', 'id')) AS id WHERE NOT EXISTS (SELECT FROM known)),
wanted AS (SELECT * FROM keys WHERE trust NOT IN (SELECT trust FROM owned)),
added AS (INSERT INTO customer_identities (customer_id, kind, value)
          SELECT target.id, wanted.kind, wanted.value
          FROM wanted, (SELECT id FROM known UNION ALL SELECT id FROM fresh) AS target ORDER BY wanted.trust
          ON CONFLICT (kind, value) DO NOTHING RETURNING kind),
created AS (INSERT INTO customers (id, name, phone, email, created_at)
            SELECT id, CAST(:name AS varchar), CAST(:phone AS varchar), CAST(:email AS varchar),
                   CAST(:now AS timestamptz) FROM fresh
            WHERE EXISTS (SELECT FROM added) OR NOT EXISTS (SELECT FROM wanted) RETURNING id),
completed AS (UPDATE customers SET
                  name = coalesce(nullif(name, ''), CAST(:name AS varchar)),
                  phone = coalesce(phone, CAST(:phone AS varchar)),
                  email = coalesce(email, CAST(:email AS varchar))
              WHERE id = (SELECT id FROM known) AND (name, phone, email) IS DISTINCT FROM
                  (coalesce(nullif(name, ''), CAST(:name AS varchar)), coalesce(phone, CAST(:phone AS varchar)),
                   coalesce(email, CAST(:email AS varchar))))
SELECT (SELECT id FROM known) AS known_id, (SELECT id FROM created) AS created_id,
       (SELECT count(*) FROM wanted) - (SELECT count(*) FROM added) AS taken
"""
).bindparams(
    bindparam("kinds", type_=ARRAY(String())),
    bindparam("values", type_=ARRAY(String())),
    bindparam("now", type_=DateTime(timezone=True)),
)


async def find_or_create_customer_id(session: AsyncSession, details: CustomerDetails) -> int | None:
    """The id of the customer :func:`find_or_create_customer` finds or creates, by the same
    rules: in one statement on PostgreSQL (the busy order entry), through it elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        customer = await find_or_create_customer(session, details)
        return customer.id if customer else None
    keys = _identities(details)
    if not keys and not details.name:
        return None
    params = {
        "kinds": [kind for kind, _ in keys],
        "values": [value for _, value in keys],
        "name": details.name,
        "phone": normalise_phone(details.phone, details.country),
        "email": _clean_email(details.email),
        "now": utcnow(),
    }
    for _attempt in range(3):
        known_id, created_id, taken = (await session.execute(_FIND_OR_CREATE_CUSTOMER, params)).one()
        if known_id is not None:
            return int(known_id)  # a key another profile holds stays theirs, as in find_or_create_customer
        if not taken:
            return int(created_id)
        # A concurrent order of the same new buyer added some of these identities first and
        # committed: the person is theirs. Undo the profile made for the other keys, if any,
        # and look again (this statement sees their rows now), as one after the other would.
        if created_id is not None:
            await session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id == created_id))
            await session.execute(delete(Customer).where(Customer.id == created_id))
    raise RuntimeError("A buyer's identities kept being taken by concurrent orders; retry the order.")


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
