"""POST each alert to purchasing's webhook.

Configuration (environment of the worker processes):

* ``OMS_NOTIFY_WEBHOOK_URL``: where to POST; unset disables the plugin.
* ``OMS_NOTIFY_WEBHOOK_SECRET``: optional; signs the body (``X-OMS-Signature: sha256=...``).

The hook runs in the ``notify_alert`` job: a failure raises ``RetryableError``
and the job is retried with backoff, on its own (other notifiers are not re-run).
"""

from __future__ import annotations

import os
from typing import Any

from oms_graphql.plugins.contract import Alert
from oms_graphql.plugins.hookspecs import hookimpl
from oms_plugin_notify_webhook.client import post_json


def alert_body(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.data.get("id"),
        "kind": alert.kind,
        "message": alert.message,
        "sku": alert.sku,
        "locationCode": alert.location_code,
        "suggestedQuantity": alert.suggested_quantity,
        "createdAt": alert.created_at.isoformat() if alert.created_at else None,
    }


@hookimpl
def oms_notify(alert: Alert) -> None:
    url = os.environ.get("OMS_NOTIFY_WEBHOOK_URL")
    if not url:
        return
    post_json(url, alert_body(alert), os.environ.get("OMS_NOTIFY_WEBHOOK_SECRET") or None)
