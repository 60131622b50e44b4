"""Log each alert, so purchasing sees low stock in whatever collects the logs."""

from __future__ import annotations

import logging

from oms_graphql.plugins.contract import Alert
from oms_graphql.plugins.hookspecs import hookimpl

log = logging.getLogger("oms.alerts")


@hookimpl
def oms_notify(alert: Alert) -> None:
    log.warning(
        "%s alert: %s",
        alert.kind,
        alert.message,
        extra={
            "alert_kind": alert.kind,
            "sku": alert.sku,
            "location_code": alert.location_code,
            "suggested_quantity": alert.suggested_quantity,
        },
    )
