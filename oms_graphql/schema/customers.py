"""Customer profiles as GraphQL types, inputs and payloads (the Customer type itself is in types.py)."""

from __future__ import annotations

import enum

import strawberry

from oms_graphql.db import models
from oms_graphql.domain.customer_history import CustomerPreferences as Preferences
from oms_graphql.domain.customer_profiles import CustomerChanges
from oms_graphql.schema.scalars import JSON
from oms_graphql.schema.types import Customer, DeliveryOptionKind, UserError


@strawberry.enum(description="How a customer is recognised.")
class CustomerIdentityKind(enum.Enum):
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    CHANNEL_BUYER = "CHANNEL_BUYER"


@strawberry.type(description="One way the matcher recognises this person: a phone, an e-mail or a channel's buyer id.")
class CustomerIdentity:
    kind: CustomerIdentityKind
    value: str = strawberry.field(
        description="Normalised: phones in E.164, e-mails in lower case without +tag (Gmail without dots)."
    )
    channel_code: str | None = strawberry.field(description="For CHANNEL_BUYER: the channel that knows the buyer.")
    buyer_id: str | None = strawberry.field(description="For CHANNEL_BUYER: the channel's buyer id.")

    @classmethod
    def from_row(cls, row: models.CustomerIdentity) -> CustomerIdentity:
        if row.kind.startswith("buyer:"):
            return cls(
                kind=CustomerIdentityKind.CHANNEL_BUYER,
                value=row.value,
                channel_code=row.kind.removeprefix("buyer:"),
                buyer_id=row.value,
            )
        kind = CustomerIdentityKind.PHONE if row.kind == "phone" else CustomerIdentityKind.EMAIL
        return cls(kind=kind, value=row.value, channel_code=None, buyer_id=None)


@strawberry.type(description="What this customer buys and how, from orders not cancelled.")
class CustomerPreferences:
    top_skus: list[str] = strawberry.field(description="Up to 5 SKUs by units kept (bought − refunded − returned).")
    top_categories: list[str] = strawberry.field(description="Up to 5 product categories by units kept.")
    preferred_channel: str | None = strawberry.field(description="The code of the channel ordered on most.")
    preferred_delivery_option: DeliveryOptionKind | None = strawberry.field(  # type: ignore[valid-type]
        description="The delivery option asked for most."
    )

    @classmethod
    def from_domain(cls, found: Preferences) -> CustomerPreferences:
        option = found.preferred_delivery_option
        return cls(
            top_skus=found.top_skus,
            top_categories=found.top_categories,
            preferred_channel=found.preferred_channel,
            preferred_delivery_option=DeliveryOptionKind(option) if option else None,
        )


# --- inputs --------------------------------------------------------------------------


@strawberry.input(description="Fields left out stay as they are; an empty string clears a text field.")
class CustomerUpdateInput:
    id: strawberry.ID
    name: str | None = None
    phone: str | None = strawberry.field(
        default=None, description="Read in the country of the customer's latest order; stored in E.164."
    )
    email: str | None = None
    tags: list[str] | None = strawberry.field(default=None, description="Replaces the tags (at most 20).")
    note: str | None = strawberry.field(default=None, description="The merchant's note (staff only).")

    def to_domain(self) -> CustomerChanges:
        return CustomerChanges(name=self.name, phone=self.phone, email=self.email, tags=self.tags, note=self.note)


@strawberry.input(description="Fold a duplicate profile into this one.")
class CustomerMergeInput:
    id: strawberry.ID = strawberry.field(description="The profile that stays.")
    duplicate_id: strawberry.ID = strawberry.field(
        description="The profile merged into it: its orders, addresses and identities move; its id then finds `id`."
    )


@strawberry.input
class CustomerIdInput:
    id: strawberry.ID


# --- payloads ------------------------------------------------------------------------


@strawberry.type
class CustomerUpdatePayload:
    customer: Customer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerMergePayload:
    customer: Customer | None = strawberry.field(default=None, description="The profile that stayed.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerExportPayload:
    data: JSON | None = strawberry.field(
        default=None,
        description="Everything held about the customer: profile, identities, addresses, and every order with "
        "its lines, returns and refunds.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class CustomerErasePayload:
    customer: Customer | None = strawberry.field(default=None, description="The profile, now anonymous.")
    user_errors: list[UserError] = strawberry.field(default_factory=list)
