"""Masking personal data and staff identities for callers who may not read them in full.

Plain functions of plain values: the GraphQL field rules (``schema/field_rules.py``) apply
them per role, and anything else that shows personal data to a restricted reader (exports,
reports, the customers' own screens) can reuse them. Each keeps enough to recognise a
value (the last digits of a phone, the domain of an e-mail) and nothing to reach the person.
"""

from __future__ import annotations

import re

from oms_graphql.domain.orders import HoldReason

MASK = "*"

# Phones are stored as the buyer typed them ("+86 138 1234 5678", "13812345678") or in
# E.164 ("+8613812345678"): mask the middle of the national number, as Chinese
# marketplaces show it (138****5678), and keep the country code and separators.
_COUNTRY_CODE = re.compile(r"^\+(?:86|1|7|[2-9]\d)")  # the country codes of the markets served, longest first


def mask_phone(phone: str | None) -> str | None:
    """``+86 13812345678`` → ``+86 138****5678``: the first three and last four digits of
    the national number kept (only the last two when it has fewer than eight digits)."""
    if not phone:
        return phone
    prefix, rest = "", phone
    if phone.startswith("+"):
        spaced = re.match(r"^\+\d{1,3}[\s\-.()]+", phone)
        matched = spaced or _COUNTRY_CODE.match(phone)
        if matched:
            prefix, rest = phone[: matched.end()], phone[matched.end() :]
    digits = sum(ch.isdigit() for ch in rest)
    keep_head, keep_tail = (3, 4) if digits >= 8 else (0, min(2, max(0, digits - 1)))
    out, seen = [], 0
    for ch in rest:
        if not ch.isdigit():
            out.append(ch if ch in " -.()" else "")
            continue
        seen += 1
        out.append(ch if seen <= keep_head or seen > digits - keep_tail else MASK)
    return prefix + "".join(out)


def mask_email(email: str | None) -> str | None:
    """``wang.fang@example.com`` → ``w***@example.com``: the first letter and the domain."""
    if not email:
        return email
    local, at, domain = email.rpartition("@")
    if not at:
        return mask_name(email)
    return f"{local[:1]}{MASK * 3}@{domain}"


def mask_name(name: str | None) -> str | None:
    """``Wang Fang`` → ``W********``, ``王芳`` → ``王*``: the first character, as receipts show it."""
    if not name:
        return name
    stripped = name.strip()
    return stripped[:1] + MASK * max(1, len(stripped) - 1)


def mask_street(street: str | None) -> str | None:
    """A street line says where someone lives: nothing of it is kept."""
    if not street:
        return street
    return MASK * 4


def mask_coordinate(value: float | None) -> float | None:
    """Two decimals (about a kilometre): the area of a delivery, not the door."""
    return None if value is None else round(value, 2)


_STAFF_PREFIXES = ("admin:", "operator:", "viewer:", "integration:")


def public_actor(actor: str | None) -> str | None:
    """Who did something, as a customer may see it: ``staff`` for a person or tool of the
    merchant's (their token's name is theirs), ``customer`` for a customer, ``system``
    for the OMS itself and channels (dispatch, ingestion, ``channel:taobao``)."""
    if actor is None:
        return None
    lowered = actor.lower()
    if lowered.startswith(_STAFF_PREFIXES):
        return "staff"
    if lowered.startswith("customer:"):
        return "customer"
    return "system"


UNDER_REVIEW = "UNDER_REVIEW"
# Holds a customer can act on or wait out keep their reason; the merchant's own checks (a risk
# score, a price that looks wrong, an unmapped SKU, a person's decision) read as a review.
_REASONS_A_CUSTOMER_SEES = frozenset(
    {
        HoldReason.ADDRESS_INCOMPLETE,
        HoldReason.OUT_OF_STOCK,
        HoldReason.BUYER_NOTE,
        HoldReason.REFUND_IN_PROGRESS,
        HoldReason.CHANNEL_HOLD,
        HoldReason.DELIVERY_PROBLEM,
    }
)


def public_hold_reason(reason: str | None) -> str | None:
    """A hold's reason as its customer may see it: RISK, PRICE_ANOMALY, UNMAPPED_SKU and MANUAL
    become UNDER_REVIEW (telling a buyer it is suspected helps only a fraudster)."""
    if reason is None:
        return None
    return reason if reason in _REASONS_A_CUSTOMER_SEES else UNDER_REVIEW
