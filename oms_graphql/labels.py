"""GET /shipments/{id}/label: a shipment's label (PDF as the carrier made it).

The same permission as the shipment: staff, or the customer whose order it is.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oms_graphql.config import Settings
from oms_graphql.db.engine import Database
from oms_graphql.db.models import Order, Shipment, ShipmentLabel
from oms_graphql.domain.access import Role
from oms_graphql.domain.identities import AuthenticationFailed
from oms_graphql.schema.context import caller_for_token, presented_token
from oms_graphql.schema.ids import from_global_id


def label_route(database: Database, settings: Settings | None = None) -> Route:
    async def label(request: Request) -> Response:
        try:
            caller = await caller_for_token(database, presented_token(request, None), settings)
        except AuthenticationFailed as failure:
            return JSONResponse({"error": failure.message}, status_code=401)
        if caller.role is None:
            return JSONResponse({"error": "Send a token: Authorization: Bearer <token>."}, status_code=401)
        raw = request.path_params["shipment_id"]
        decoded = from_global_id(raw)
        shipment_id = decoded[1] if decoded and decoded[0] == "Shipment" else (int(raw) if raw.isdigit() else None)
        async with database.session() as session:
            shipment = await session.get(Shipment, shipment_id) if shipment_id is not None else None
            order = await session.get(Order, shipment.order_id) if shipment is not None else None
            stored = await session.get(ShipmentLabel, shipment.id) if shipment is not None else None
        allowed = order is not None and (caller.role != Role.CUSTOMER or order.customer_id == caller.customer_id)
        if allowed and shipment is not None and shipment.status == "CANCELLED":
            return JSONResponse(
                {
                    "error": "This shipment was cancelled: its label is void and must not be used. "
                    "Print the label of the shipment that replaces it."
                },
                status_code=410,
            )
        if not allowed or stored is None:
            return JSONResponse({"error": "No label for this shipment (yet)."}, status_code=404)
        return Response(
            stored.content,
            media_type=stored.media_type,
            headers={"Content-Disposition": f'inline; filename="label-{shipment_id}.pdf"'},
        )

    return Route("/shipments/{shipment_id}/label", label, methods=["GET"])
