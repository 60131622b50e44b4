"""One permission mechanism: every root field says which roles may call it."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from oms_graphql.domain.access import Role

ALL_STAFF = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
OPERATORS = (Role.ADMIN, Role.OPERATOR)
ADMINS = (Role.ADMIN,)
ANYONE_SIGNED_IN = (Role.ADMIN, Role.OPERATOR, Role.VIEWER, Role.CUSTOMER)


def allow(*roles: Role) -> type[BasePermission]:
    """A permission class that lets only ``roles`` through."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(role.value for role in allowed))

    class Allow(BasePermission):
        message = f"Not allowed: this operation needs one of the roles {names}. Send a token with one."
        roles = allowed

        async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            caller = await info.context.caller()
            return caller.role in allowed

    Allow.__name__ = f"Allow_{'_'.join(sorted(role.value for role in allowed))}"
    return Allow


# Ready-made ``permission_classes`` lists for resolvers.
ADMIN = [allow(*ADMINS)]
OPERATE = [allow(*OPERATORS)]
STAFF = [allow(*ALL_STAFF)]
SIGNED_IN = [allow(*ANYONE_SIGNED_IN)]
# Staff who change things, or a customer acting on its own (the resolver checks whose).
OPERATE_OR_CUSTOMER = [allow(*OPERATORS, Role.CUSTOMER)]


class Public(BasePermission):
    """Declared open to anyone, even without a token (the field checks what it needs itself)."""

    message = "Not allowed."

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return True


PUBLIC: list[type[BasePermission]] = [Public]
