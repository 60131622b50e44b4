"""Kuaidi100 payloads → the carrier contract's dataclasses.

Times are ``yyyy-MM-dd HH:mm:ss`` Beijing time without an offset (README,
[inferred]); status codes follow status_map.json "kuaidi100".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from oms_graphql.plugins.carrier_contract import TrackingEvent, TrackingStatus
from oms_graphql.plugins.contract import PayloadError

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_T = TrackingStatus
# status_map.json "kuaidi100": base codes and the advanced (resultv2=4) sub-codes.
STATUS_MAP = {
    "101": _T.PRE_TRANSIT, "102": _T.PRE_TRANSIT,
    "1": _T.IN_TRANSIT, "103": _T.IN_TRANSIT, "0": _T.IN_TRANSIT, "1001": _T.IN_TRANSIT, "1002": _T.IN_TRANSIT,
    "1003": _T.IN_TRANSIT, "7": _T.IN_TRANSIT, "8": _T.IN_TRANSIT, "10": _T.IN_TRANSIT, "11": _T.IN_TRANSIT,
    "12": _T.IN_TRANSIT,
    "5": _T.OUT_FOR_DELIVERY, "501": _T.OUT_FOR_DELIVERY,
    "3": _T.DELIVERED, "301": _T.DELIVERED, "302": _T.DELIVERED, "303": _T.DELIVERED, "304": _T.DELIVERED,
    "204": _T.FAILED_ATTEMPT, "206": _T.FAILED_ATTEMPT,
    "2": _T.EXCEPTION, "201": _T.EXCEPTION, "202": _T.EXCEPTION, "203": _T.EXCEPTION, "205": _T.EXCEPTION,
    "207": _T.EXCEPTION, "208": _T.EXCEPTION, "209": _T.EXCEPTION, "210": _T.EXCEPTION, "401": _T.EXCEPTION,
    "13": _T.EXCEPTION,
    "6": _T.RETURNED_TO_SENDER, "4": _T.RETURNED_TO_SENDER, "14": _T.RETURNED_TO_SENDER,
}  # fmt: skip


def neutral_status(code: str) -> TrackingStatus:
    """The neutral status of a base or advanced code; unknown sub-codes by their group
    (status_map.json ``sub_code_rule``: 1xx..5xx by first digit, 100x is 在途)."""
    if code in STATUS_MAP:
        return STATUS_MAP[code]
    if len(code) == 4 and code.startswith("100"):
        return _T.IN_TRANSIT
    if len(code) == 3 and code[0] in "12345":
        return STATUS_MAP[code[0]]
    # The contract has no "unknown": 在途 is the status that moves nothing backwards.
    return _T.IN_TRANSIT


def beijing_time(value: Any, field: str) -> datetime:
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=SHANGHAI).astimezone(UTC)
    except ValueError:
        raise PayloadError(f"Kuaidi100 {field} is not '{TIME_FORMAT}': {value!r}") from None


def tracking_events(result: dict[str, Any], where: str) -> list[TrackingEvent]:
    """A query reply's (or a push's ``lastResult``) ``data[]`` as events, oldest first."""
    if not isinstance(result, dict):
        raise PayloadError(f"Kuaidi100 {where} is not an object")
    number = result.get("nu")
    data = result.get("data") or []
    if not isinstance(data, list):
        raise PayloadError(f"Kuaidi100 {where}.data is not a list")
    if data and not number:
        raise PayloadError(f"Kuaidi100 {where} has no 'nu' (tracking number)")
    events = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise PayloadError(f"Kuaidi100 {where}.data[{index}] is not an object")
        # statusCode comes with resultv2=4; without it, only the top-level state is known.
        code = str(entry.get("statusCode") or (result.get("state") if index == 0 else "") or "0")
        events.append(
            TrackingEvent(
                tracking_number=str(number),
                status=neutral_status(code),
                occurred_at=beijing_time(entry.get("time") or entry.get("ftime"), f"{where}.data[{index}].time"),
                carrier_code=code,
                description=str(entry.get("context") or ""),
                location=str(entry.get("areaName") or entry.get("location") or "") or None,
            )
        )
    events.sort(key=lambda event: event.occurred_at)  # Kuaidi100 sends newest first
    return events


def push_payload(param: str) -> dict[str, Any]:
    try:
        payload = json.loads(param)
    except ValueError as exc:
        raise PayloadError(f"Kuaidi100 push: 'param' is not JSON: {exc}") from None
    if not isinstance(payload, dict) or "lastResult" not in payload:
        raise PayloadError("Kuaidi100 push: 'param' has no 'lastResult'")
    return payload
