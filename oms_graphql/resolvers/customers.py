"""Customer profiles: list and search, one by id, update, merge duplicates, export, erase.

Who may do what: staff read every profile; ADMIN and OPERATOR update and merge (folding
duplicates is routine data care); only ADMIN exports or erases (a whole person's data
leaves the system, or is gone for good). A CUSTOMER token reads and updates only its own
profile, and only its name, phone and e-mail: tags and the note are the merchant's.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.db import models
from oms_graphql.domain import customer_history, customer_profiles
from oms_graphql.domain.access import Role
from oms_graphql.domain.errors import Forbidden, NotFound
from oms_graphql.resolvers.common import context, db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.customers import (
    CustomerErasePayload,
    CustomerExportPayload,
    CustomerIdInput,
    CustomerMergeInput,
    CustomerMergePayload,
    CustomerUpdateInput,
    CustomerUpdatePayload,
)
from oms_graphql.schema.ids import from_global_id
from oms_graphql.schema.inputs import CustomerFilter
from oms_graphql.schema.permissions import ADMIN, CUSTOMER_OR_STAFF, OPERATE, OPERATE_OR_OWN, STAFF
from oms_graphql.schema.relay import Connection, paginate
from oms_graphql.schema.types import Customer


def _customer_id(value: strawberry.ID, field: str = "id") -> int:
    return db_id(value, "Customer", (field,))


@strawberry.type
class CustomersQuery:
    @strawberry.field(
        description="Customer profiles, newest first; merged duplicates are not listed (their ids find the profile "
        "they were merged into).",
        permission_classes=STAFF,
    )
    async def customers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: CustomerFilter | None = None,
    ) -> Connection[Customer]:
        C = models.Customer
        query = select(C).where(C.merged_into_id.is_(None)).order_by(C.id.desc())
        if filter and filter.search and filter.search.strip():
            query = query.where(customer_profiles.customer_search(filter.search))
        return await paginate(
            context(info).database, query, Customer.from_row, first=first, after=after, last=last, before=before
        )

    @strawberry.field(
        description="One customer; the id of a merged duplicate finds the profile it was merged into. A customer "
        "may read only itself.",
        permission_classes=CUSTOMER_OR_STAFF,
    )
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        decoded = from_global_id(id)
        if decoded is None or decoded[0] != "Customer":
            return None
        async with context(info).database.session() as session:
            try:
                row = await customer_profiles.customer_by_id(session, decoded[1])
            except NotFound:
                return None
        caller = await context(info).caller()
        if caller.role == Role.CUSTOMER and row.id != caller.customer_id:
            return None
        return Customer.from_row(row)


@strawberry.type
class CustomersMutation:
    @strawberry.mutation(
        description="Change a profile's name, phone, e-mail, tags or note. A phone or e-mail that already identifies "
        "another customer is refused (merge the two instead). Staff who operate, or the customer itself (name, "
        "phone and e-mail only).",
        permission_classes=OPERATE_OR_OWN,
    )
    async def customer_update(self, info: Info, input: CustomerUpdateInput) -> CustomerUpdatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            customer_id = _customer_id(input.id)
            if caller.role == Role.CUSTOMER:
                own = await customer_profiles.customer_by_id(session, customer_id)
                if own.id != caller.customer_id:
                    raise Forbidden("A customer can change only its own profile.", ("id",))
                for field, value in (("tags", input.tags), ("note", input.note)):
                    if value is not None:
                        raise Forbidden(f"{field} is the merchant's; a customer cannot set it.", (field,))
            row = await customer_profiles.update_customer(session, customer_id, input.to_domain())
            return {"customer": Customer.from_row(row)}

        return await run_mutation(info, CustomerUpdatePayload, work)

    @strawberry.mutation(
        description="Fold a duplicate profile the matcher missed into this one, in one step: the duplicate's orders, "
        "addresses and identities move, and its id finds this profile from then on.",
        permission_classes=OPERATE,
    )
    async def customer_merge(self, info: Info, input: CustomerMergeInput) -> CustomerMergePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await customer_profiles.merge_customers(
                session, _customer_id(input.id), _customer_id(input.duplicate_id, "duplicateId")
            )
            return {"customer": Customer.from_row(row)}

        return await run_mutation(info, CustomerMergePayload, work)

    @strawberry.mutation(
        description="Everything held about one customer, as JSON (a data subject's access request). ADMIN only.",
        permission_classes=ADMIN,
    )
    async def customer_export(self, info: Info, input: CustomerIdInput) -> CustomerExportPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            return {"data": await customer_history.export_customer(session, _customer_id(input.id))}

        return await run_mutation(info, CustomerExportPayload, work)

    @strawberry.mutation(
        description="Anonymise a customer for good: the profile's and its orders' addresses' personal data go, the "
        "orders, totals and stock ledger stay. Cannot be undone; a later order with the old phone makes a new "
        "profile. ADMIN only.",
        permission_classes=ADMIN,
    )
    async def customer_erase(self, info: Info, input: CustomerIdInput) -> CustomerErasePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await customer_profiles.erase_customer(session, _customer_id(input.id))
            return {"customer": Customer.from_row(row)}

        return await run_mutation(info, CustomerErasePayload, work)
