"""Permissions, in two layers declared once each.

- Root fields: every field of Query, Mutation and Subscription names the roles that
  may call it (``permission_classes=STAFF`` …). A refused call is a GraphQL error with
  ``extensions.code`` FORBIDDEN (UNAUTHENTICATED when no token was sent).
- Fields of the types they return: every field has a ``FieldRule`` in
  ``schema/field_rules.py``, saying which roles get it as stored, which get it masked
  (personal data, staff identities) and which are refused it (null and a FORBIDDEN
  error: only nullable fields may be refused, so one refusal never blanks its parent).
  ``install_field_rules`` puts a guard on each field that restricts anyone, once, when
  the schema is built; an open field keeps strawberry's resolver untouched, and a guard
  reads the caller the root field's permission already resolved, so a page of 100
  orders pays one dict lookup per restricted field and no query.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, default_field_resolver
from strawberry.permission import BasePermission
from strawberry.types import Info

from oms_graphql.domain import masking
from oms_graphql.domain.access import Role

ALL_STAFF = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
OPERATORS = (Role.ADMIN, Role.OPERATOR)
ADMINS = (Role.ADMIN,)
ANYONE_SIGNED_IN = (Role.ADMIN, Role.OPERATOR, Role.VIEWER, Role.INTEGRATION, Role.CUSTOMER)
# INTEGRATION: a sync tool (an ERP, a WMS, a marketplace middleware). It reads what a sync
# needs (catalog, locations, stock, channels, carriers, inbound messages, orders with personal
# data masked), runs channel syncs, stock pushes, reconciliations, listings and replays, and
# subscribes to order, stock and shipment events. It changes no order, stock or configuration.
SYNC_READERS = (*ALL_STAFF, Role.INTEGRATION)
SYNC_RUNNERS = (*OPERATORS, Role.INTEGRATION)

FORBIDDEN = "FORBIDDEN"
UNAUTHENTICATED = "UNAUTHENTICATED"


def forbidden(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": FORBIDDEN})


def allow(*roles: Role) -> type[BasePermission]:
    """A permission class that lets only ``roles`` through."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(role.value for role in allowed))

    class Allow(BasePermission):
        message = f"Not allowed: this operation needs one of the roles {names}. Send a token with one."
        error_extensions = {"code": FORBIDDEN}
        roles = allowed

        async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            caller = await info.context.caller()
            if caller.role is None:
                raise GraphQLError(
                    f"Not allowed without a token: this operation needs one of the roles {names}. "
                    "Send Authorization: Bearer <token>.",
                    extensions={"code": UNAUTHENTICATED},
                )
            return caller.role in allowed

    Allow.__name__ = f"Allow_{'_'.join(sorted(role.value for role in allowed))}"
    return Allow


# Ready-made ``permission_classes`` lists for resolvers.
ADMIN = [allow(*ADMINS)]
OPERATE = [allow(*OPERATORS)]
STAFF = [allow(*ALL_STAFF)]
SIGNED_IN = [allow(*ANYONE_SIGNED_IN)]
SYNC_READ = [allow(*SYNC_READERS)]
SYNC = [allow(*SYNC_RUNNERS)]
CUSTOMER_OR_STAFF = [allow(*ALL_STAFF, Role.CUSTOMER)]
OPERATE_OR_OWN = [allow(*OPERATORS, Role.CUSTOMER)]  # a customer acting on its own (the resolver checks whose)


class Public(BasePermission):
    """Declared open to anyone, even without a token (the field checks what it needs itself)."""

    message = "Not allowed."
    roles = frozenset({*Role, None})

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return True


PUBLIC: list[type[BasePermission]] = [Public]


def roles_of(permission_classes: Iterable[type[BasePermission]]) -> frozenset[Role | None]:
    """The roles (None: no token) that pass every one of these permission classes."""
    allowed: frozenset[Role | None] = frozenset({*Role, None})
    for permission in permission_classes:
        allowed &= frozenset(getattr(permission, "roles", ()))
    return allowed


# --- field rules ---------------------------------------------------------------

Mask = Callable[[Any, Any], Any]
"""(value, the object it belongs to) → what a restricted reader gets instead."""


@dataclass(frozen=True)
class FieldRule:
    """Who may read a field and what the others get. Roles not named read it as stored."""

    summary: str
    refused: frozenset[Role | None] = frozenset()
    masked: frozenset[Role | None] = frozenset()
    mask: Mask | None = field(default=None, compare=False)

    @property
    def restricts(self) -> bool:
        return bool(self.refused or self.masked)

    def describe(self) -> str:
        return f"Access: {self.summary}"

    def combined(self, other: FieldRule) -> FieldRule:
        """Both rules at once: refused by either, else masked by ``other``."""
        refused = self.refused | other.refused
        return FieldRule(
            summary=" ".join(filter(None, (self.summary, other.summary))),
            refused=refused,
            masked=(self.masked | other.masked) - refused,
            mask=other.mask or self.mask,
        )


OUTSIDERS: frozenset[Role | None] = frozenset({Role.CUSTOMER, None})
PERSONAL_DATA_MASKED_FOR: frozenset[Role | None] = frozenset({Role.VIEWER, Role.INTEGRATION})
NOT_STAFF: frozenset[Role | None] = frozenset({Role.CUSTOMER, Role.INTEGRATION, None})

EVERYONE = FieldRule("")
"""Anyone the root field let in reads it as stored."""

MERCHANT = FieldRule(
    "the merchant's own (staff and integrations); customers get null and a FORBIDDEN error.",
    refused=OUTSIDERS,
)
"""The merchant's configuration and internals: settings, errors, priorities, reasons."""

RAW_PAYLOAD = FieldRule(
    "ADMIN, OPERATOR and INTEGRATION; others get null and a FORBIDDEN error (raw payloads hold "
    "personal data that cannot be masked).",
    refused=frozenset({Role.VIEWER, Role.CUSTOMER, None}),
)


def _personal(mask: Callable[[Any], Any]) -> Mask:
    # An Address is personal on an order, not on a location (a store's phone and street are public).
    return lambda value, source: mask(value) if getattr(source, "personal", True) else value


def personal(what: str, mask: Callable[[Any], Any]) -> FieldRule:
    return FieldRule(
        f"personal data: VIEWER and INTEGRATION read it masked ({what}).",
        masked=PERSONAL_DATA_MASKED_FOR,
        mask=_personal(mask),
    )


PERSONAL_NAME = personal("first character kept", masking.mask_name)
PERSONAL_PHONE = personal("e.g. 138****5678", masking.mask_phone)
PERSONAL_EMAIL = personal("e.g. w***@example.com", masking.mask_email)
PERSONAL_STREET = personal("****", masking.mask_street)
PERSONAL_COORDINATE = personal("two decimals", masking.mask_coordinate)

STAFF_IDENTITY = FieldRule(
    'staff identity: customers and integrations read "staff", "customer" or "system" instead of a name.',
    masked=NOT_STAFF,
    mask=lambda value, source: masking.public_actor(value),
)


def _mask_identity(value: Any, source: Any) -> Any:
    kind = str(getattr(getattr(source, "kind", None), "value", getattr(source, "kind", "")))
    if kind == "PHONE":
        return masking.mask_phone(value)
    if kind == "EMAIL":
        return masking.mask_email(value)
    return masking.mask_name(value)


PERSONAL_IDENTITY = FieldRule(
    "personal data: VIEWER and INTEGRATION read it masked (as a phone, e-mail or name).",
    masked=PERSONAL_DATA_MASKED_FOR,
    mask=_mask_identity,
)

MERCHANT_LABELS = FieldRule(
    "the merchant's own labels: customers read an empty list.",
    masked=OUTSIDERS,
    mask=lambda value, source: [],
)

HOLD_REASON = FieldRule(
    "customers read the merchant's own checks (RISK, PRICE_ANOMALY, UNMAPPED_SKU, MANUAL) as UNDER_REVIEW.",
    masked=OUTSIDERS,
    mask=lambda value, source: masking.public_hold_reason(value),
)

FieldRules = Mapping[str, Mapping[FieldRule, str]]
"""Per GraphQL type: rule → the space-separated GraphQL names of the fields it covers."""


def rule_table(rules: FieldRules) -> dict[str, dict[str, FieldRule]]:
    """The declarations flattened to type → field → rule; a field declared twice is an error."""
    table: dict[str, dict[str, FieldRule]] = {}
    for type_name, by_rule in rules.items():
        fields = table.setdefault(type_name, {})
        for rule, names in by_rule.items():
            for name in names.split():
                if name in fields:
                    raise ValueError(f"{type_name}.{name} has two field rules")
                fields[name] = rule
    return table


def _guard(resolve: Callable[..., Any], rule: FieldRule, where: str) -> Callable[..., Any]:
    message = f"Not allowed: your role may not read {where}."

    def apply(role: Role | None, source: Any, info: Any, kwargs: dict[str, Any]) -> Any:
        if role in rule.refused:
            raise forbidden(message)
        result = resolve(source, info, **kwargs)
        if role not in rule.masked or rule.mask is None:
            return result
        if inspect.isawaitable(result):
            return _mask_later(result, rule.mask, source)
        return rule.mask(result, source)

    async def resolve_caller_first(source: Any, info: Any, kwargs: dict[str, Any]) -> Any:
        caller = await info.context.caller()
        result = apply(caller.role, source, info, kwargs)
        return await result if inspect.isawaitable(result) else result

    def guarded(source: Any, info: Any, **kwargs: Any) -> Any:
        # Root fields' permissions resolved the caller already: stay sync for plain fields.
        caller = info.context.caller_if_known()
        if caller is None:
            return resolve_caller_first(source, info, kwargs)
        return apply(caller.role, source, info, kwargs)

    guarded.field_rule = rule  # type: ignore[attr-defined]
    guarded.__wrapped__ = resolve  # type: ignore[attr-defined]
    return guarded


async def _mask_later(result: Any, mask: Mask, source: Any) -> Any:
    return mask(await result, source)


def declared_rule(
    table: Mapping[str, Mapping[str, FieldRule]], merchant_types: Iterable[str], type_name: str, field_name: str
) -> FieldRule | None:
    """The rule of one field: its own, and MERCHANT's too when its type is the merchant's."""
    declared = table.get(type_name, {}).get(field_name)
    if type_name in merchant_types:
        return MERCHANT if declared is None else MERCHANT.combined(declared)
    return declared


def install_field_rules(schema: GraphQLSchema, rules: FieldRules, merchant_types: Iterable[str]) -> None:
    """Guard every restricted field of ``schema``, and say in its description who may read it.

    ``merchant_types``: types only the merchant's roles are meant to reach (by their root
    fields, or ``node``): each of their fields, now and later, is MERCHANT besides its own rule.
    The guard is then the last line behind the root fields, so a refusal may blank a non-null
    field's parent there; anywhere else only nullable fields may be refused.
    """
    table = rule_table(rules)
    merchant = frozenset(merchant_types)
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        if type_name in merchant and MERCHANT.summary not in (graphql_type.description or ""):
            graphql_type.description = " ".join(filter(None, (graphql_type.description, MERCHANT.describe())))
        for field_name, graphql_field in graphql_type.fields.items():
            rule = declared_rule(table, merchant, type_name, field_name)
            if rule is None or not rule.restricts:
                continue
            if rule.refused and isinstance(graphql_field.type, GraphQLNonNull) and type_name not in merchant:
                raise ValueError(f"{type_name}.{field_name} is non-null: mask it rather than refuse it")
            if getattr(graphql_field.resolve, "field_rule", None) is None:
                graphql_field.resolve = _guard(
                    graphql_field.resolve or default_field_resolver, rule, f"{type_name}.{field_name}"
                )
                own = table.get(type_name, {}).get(field_name)
                if type_name not in merchant or own is not None:
                    described = (own or rule).describe()
                    graphql_field.description = " ".join(filter(None, (graphql_field.description, described)))


def rule_of(schema: GraphQLSchema, type_name: str, field_name: str) -> FieldRule | None:
    """The rule a field's guard enforces (None: no guard, open to whoever reaches it)."""
    graphql_type = schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    return getattr(graphql_type.fields[field_name].resolve, "field_rule", None)
