"""Who may read each field: the one declaration, enforced by ``permissions.install_field_rules``.

Every field of every type has a rule here (tests/test_field_permissions.py walks the schema
and fails on one without). The rule of thumb:

- What a customer needs of its own order (status, lines, totals, shipments, tracking, the
  channel's name and code, a pickup store's name and address): EVERYONE.
- The merchant's configuration and internals (channel settings, which secrets are set, sync
  errors, location priorities and flags, allocation reasons, staff notes, label files):
  MERCHANT, null with a FORBIDDEN error for customers. Such fields are nullable.
- Personal data (a customer's name, phone, e-mail; an order address's street and
  coordinates): read as stored by staff who run orders and by the customer itself, masked for
  VIEWER and INTEGRATION.
- Staff identities (who raised a hold, booked a movement, changed an order): masked for
  customers and integrations ("staff", "customer", "system").

Types only the merchant's roles reach (by their root fields) are declared whole in
``MERCHANT_TYPES``: a field added to them later is the merchant's too. Connections, edges and
payloads (``STRUCTURAL_SUFFIXES``) carry what their root field returns and are open.
"""

from __future__ import annotations

from oms_graphql.schema.permissions import (
    EVERYONE,
    HOLD_REASON,
    MERCHANT,
    MERCHANT_LABELS,
    PERSONAL_COORDINATE,
    PERSONAL_EMAIL,
    PERSONAL_IDENTITY,
    PERSONAL_NAME,
    PERSONAL_PHONE,
    PERSONAL_STREET,
    RAW_PAYLOAD,
    STAFF_IDENTITY,
    FieldRules,
)

FIELD_RULES: FieldRules = {
    "Order": {
        EVERYONE: "id number status externalId currency deliveryOption note placedAt paidAt cancelledAt "
        "promisedDeliverBy promisedShipBy subtotal shippingFee discount tax total channel customer shippingAddress "
        "lines allocations shipments events holds fulfillmentOrders returns refundTotal",
    },
    "OrderLine": {
        EVERYONE: "lineNo sku channelSkuId title quantity refundedQuantity returnedQuantity unitPrice discount total"
    },
    # A customer's returns: what it asked, what was received and refunded, and why one was refused.
    "Return": {
        EVERYONE: "id number status note rejectReason createdAt receivedAt refundTotal refundDue order "
        "replacementOrder lines",
    },
    "ReturnLine": {
        EVERYONE: "lineNo sku quantity reason receivedQuantity resellableQuantity damagedQuantity missingQuantity "
        "condition",
    },
    "Money": {EVERYONE: "amount currency"},
    "Allocation": {EVERYONE: "sku quantity shippedQuantity status location", MERCHANT: "reason score"},
    "FulfillmentOrder": {EVERYONE: "id status location order lines shipments holds"},
    "FulfillmentOrderLine": {EVERYONE: "lineNo sku quantity shippedQuantity"},
    "Hold": {
        EVERYONE: "createdAt deadline releasedAt",
        HOLD_REASON: "reason",
        MERCHANT: "note",
        STAFF_IDENTITY: "raisedBy",
    },
    "OrderEvent": {EVERYONE: "kind fromStatus toStatus createdAt", MERCHANT: "message", STAFF_IDENTITY: "actor"},
    "Shipment": {
        EVERYONE: "id status carrier service trackingNumber createdAt dispatchedAt deliveredAt late events packages",
        MERCHANT: "labelUrl deliveryChoice channelConfirmedAt",
    },
    "Package": {EVERYONE: "weightGrams lengthMm widthMm heightMm trackingNumber"},
    "ShipmentEvent": {EVERYONE: "code description location occurredAt"},
    "Channel": {
        EVERYONE: "id code name kind",
        MERCHANT: "stockSharePercent stockBuffer pollIntervalSeconds syncFrom syncCursor active settings "
        "secretSettingsSet lastPulledAt lastError lastErrorAt lastReconcile",
    },
    "Location": {
        EVERYONE: "id code name kind canPickup address",
        MERCHANT: "priority canShip autoDispatch active",
    },
    "Customer": {
        EVERYONE: "id createdAt erasedAt orders orderCount lifetimeValue firstOrderAt lastOrderAt preferences "
        "identities",
        MERCHANT: "note",
        MERCHANT_LABELS: "tags",
        PERSONAL_NAME: "name",
        PERSONAL_PHONE: "phone",
        PERSONAL_EMAIL: "email",
    },
    "CustomerIdentity": {EVERYONE: "kind channelCode", PERSONAL_IDENTITY: "value", PERSONAL_NAME: "buyerId"},
    "CustomerPreferences": {EVERYONE: "topSkus topCategories preferredChannel preferredDeliveryOption"},
    "Address": {
        EVERYONE: "country region city district postalCode",
        PERSONAL_NAME: "name",
        PERSONAL_PHONE: "phone",
        PERSONAL_EMAIL: "email",
        PERSONAL_STREET: "line1 line2",
        PERSONAL_COORDINATE: "latitude longitude",
    },
    "Me": {EVERYONE: "name role customerId"},
    "OrderStatusChanged": {
        EVERYONE: "orderId number channelCode kind fromStatus status at order",
        MERCHANT: "message",
    },
    "ShipmentStatusChanged": {EVERYONE: "shipmentId orderId carrier trackingNumber fromStatus status at"},
    # orderTracking: anyone with the order's number and the buyer's contact; nothing personal but the city.
    "OrderTracking": {EVERYONE: "number status placedAt promisedDeliverBy city shipments"},
    "TrackingShipment": {EVERYONE: "carrier trackingNumber status events"},
    "TrackingEvent": {EVERYONE: "code description location occurredAt"},
    "UserError": {EVERYONE: "field message code"},
    "PageInfo": {EVERYONE: "hasNextPage hasPreviousPage startCursor endCursor"},
    # Merchant types (below) with a stricter rule on some fields.
    "InboundMessage": {RAW_PAYLOAD: "body headers"},
    "StockMovement": {STAFF_IDENTITY: "actor"},
}

MERCHANT_TYPES: frozenset[str] = frozenset(
    [
        "Alert",
        "ApiToken",
        "AuditEntry",
        "AvailableToPromise",
        "Carrier",
        "CarrierKind",
        "CarrierService",
        "ChannelKind",
        "ChannelListing",
        "ChannelReconcileSummary",
        "ChannelSettingField",
        "CustomerCohort",
        "CustomerSegment",
        "DeliveryOption",
        "DemandForecast",
        "ForecastPoint",
        "FulfillmentKpiRow",
        "HoursSummary",
        "InboundMessage",
        "InventoryKpiRow",
        "LocationAvailability",
        "Plugin",
        "PreferenceShare",
        "Product",
        "ProductSales",
        "Refund",
        "ReorderSuggestion",
        "Reports",
        "SalesTrendPoint",
        "SegmentPreferences",
        "StockEvent",
        "StockLevel",
        "StockMovement",
        "StoredReorderForecast",
        "TopProducts",
        "Transfer",
        "TransferLine",
        "TransferSuggestion",
    ]
)

STRUCTURAL_SUFFIXES = ("Connection", "Edge", "Payload")
