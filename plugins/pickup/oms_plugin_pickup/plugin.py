"""Hook implementations of the ``pickup`` carrier kind: the customer collects at a store.

There is no outside API: the "waybill" is the OMS's own pickup reference, and the
service is free and ready the same day. Which stores can serve a pickup is the
OMS's rule (locations that can pick up), not this plugin's.
"""

from __future__ import annotations

from decimal import Decimal

from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierKind,
    CarrierService,
    DeliveryKind,
    Handling,
    RateQuote,
    ShipmentRequest,
    Waybill,
)
from oms_graphql.plugins.hookspecs import hookimpl

KIND = "pickup"
SERVICE = CarrierService(
    code="PICKUP",
    name="Store pickup",
    kind=DeliveryKind.PICKUP,
    handling=(Handling.FRAGILE, Handling.COLD_CHAIN, Handling.OVERSIZE, Handling.HAZMAT),
    transit_days=0,
)


@hookimpl
def oms_carrier_kinds() -> list[CarrierKind]:
    return [CarrierKind(kind=KIND, name="Store pickup", creates_waybills=False)]


@hookimpl
def oms_carrier_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    return [] if kind == KIND else None


@hookimpl
def oms_carrier_services(carrier: CarrierConfig) -> list[CarrierService] | None:
    return [SERVICE] if carrier.kind == KIND else None


@hookimpl
def oms_carrier_quote(carrier: CarrierConfig, request: ShipmentRequest) -> list[RateQuote] | None:
    if carrier.kind != KIND:
        return None
    return [RateQuote(service_code=SERVICE.code, price=Decimal("0"), currency=request.currency, transit_days=0)]


@hookimpl
def oms_carrier_create_waybill(carrier: CarrierConfig, request: ShipmentRequest) -> Waybill | None:
    if carrier.kind != KIND:
        return None
    # The shipment's own reference is stable across retries, so the pickup number is too.
    return Waybill(tracking_number=f"PU-{request.reference}", price=Decimal("0"), currency=request.currency)


@hookimpl
def oms_carrier_cancel(carrier: CarrierConfig, waybill: Waybill) -> bool | None:
    if carrier.kind != KIND:
        return None
    # No outside party holds a pickup number: the parcel simply stays in the store.
    return True
