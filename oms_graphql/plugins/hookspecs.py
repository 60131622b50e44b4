"""The plugin contract: every hook a plugin may implement.

This file is the plugin author's reference. A plugin is a Python module (or
object) with functions decorated by ``hookimpl`` whose names match the specs
below, registered under the entry-point group ``oms_graphql.plugins``::

    # pyproject.toml of your plugin
    [project.entry-points."oms_graphql.plugins"]
    my_channel = "my_channel.plugin"

Rules every hook follows:

* Hooks are plain (sync) functions called with keyword arguments. An
  implementation may accept fewer arguments than its spec lists.
* Hooks that take a ``channel`` (or a ``kind``) are called for every installed
  plugin; an implementation must return ``None`` for a kind it does not own.
  For ``firstresult`` hooks the first non-``None`` answer wins.
* Network I/O happens only in hooks documented as "runs in a job": the OMS
  calls them from a background worker, never inside a web request or a
  database transaction. Use ``httpx`` with a timeout; report failures with the
  typed errors of :mod:`oms_graphql.plugins.contract` (``RetryableError`` to be
  retried later, honouring ``retry_after``; ``PermanentError`` to park the work
  and raise an alert; ``PayloadError`` for a payload that cannot be parsed).
* Data in and out are the dataclasses of :mod:`oms_graphql.plugins.contract`
  (channels, notifiers, allocation) and :mod:`oms_graphql.plugins.carrier_contract`
  (carriers). :mod:`oms_graphql.plugins.calls` has a shared rate limit and quick
  retries for outbound calls.
"""

from __future__ import annotations

from datetime import datetime

import pluggy

from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierKind,
    CarrierService,
    Label,
    RateQuote,
    ShipmentRequest,
    TrackingEvent,
    TrackingPush,
    Waybill,
)
from oms_graphql.plugins.contract import (
    Alert,
    AllocationRequest,
    CandidateLocation,
    ChannelConfig,
    ChannelKind,
    NormalizedOrder,
    OrderPage,
    RawOrderPayload,
    ShipmentConfirmation,
    StockPush,
    StockPushResult,
    WebhookRequest,
    WebhookVerdict,
)

PROJECT = "oms_graphql"
ENTRY_POINT_GROUP = "oms_graphql.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- channel plugins --------------------------------------------------------


@hookspec
def oms_channel_kinds() -> list[ChannelKind]:
    """Describe the channel kinds this plugin provides.

    Called once at start-up. Return a list of :class:`ChannelKind` (kind name,
    display name, the ``settings`` keys with which is secret, whether it pulls
    orders and/or receives webhooks). Kind names are unique across plugins.
    """


@hookspec(firstresult=True)
def oms_channel_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    """Check a channel's ``settings`` beyond the generic checks.

    The OMS already checks required keys and value types from the
    :class:`SettingField` list. Return a list of ``(key, message)`` problems
    (empty when fine) for your ``kind``, or ``None`` for any other kind.
    """


@hookspec(firstresult=True)
def oms_channel_fetch_orders(
    channel: ChannelConfig, updated_after: datetime, updated_before: datetime, page: str | None
) -> OrderPage | None:
    """Fetch one page of orders changed in ``[updated_after, updated_before)``.

    Runs in a job. ``page`` is None for the first page, else the ``next_page``
    of the previous answer. Times are UTC; convert to the channel's time zone
    yourself. Return the raw order bodies (the OMS stores each one before it
    parses it), or ``None`` if ``channel.kind`` is not yours. The OMS chooses
    windows no longer than the channel allows (see ``oms_channel_max_window``).

    The OMS stores each page, and the ``next_page`` token with it, in one
    transaction: a pull that fails or whose worker dies resumes at the page it
    had reached, with the same window, so a token must stay valid for a retry
    (page numbers do). Page so that an order modified while you page is not
    skipped (Taobao: from the last page back to the first). Retry a transient
    fault (an HTTP 502, a timeout) a few times yourself before you raise
    ``RetryableError``: the job's own retries wait much longer.
    """


@hookspec(firstresult=True)
def oms_channel_fetch_order(channel: ChannelConfig, external_id: str) -> RawOrderPayload | None:
    """Fetch one order in full, by the channel's order id.

    Runs in a job, between transactions. Called for each ``partial`` payload of a
    fetched page whose version is not stored yet, and by reconciliation. Return
    the complete raw body (with ``updated_at``, ``partial`` left False), or
    ``None`` if ``channel.kind`` is not yours. Throttle your calls to the
    channel's rate limit; raise ``RetryableError`` for faults that a later try may
    not meet, ``PermanentError`` when the order cannot be fetched at all.
    """


@hookspec(firstresult=True)
def oms_channel_max_window(channel: ChannelConfig) -> float | None:
    """The longest pull window the channel accepts, in seconds (None: not yours).

    Taobao's ``taobao.trades.sold.increment.get`` accepts at most one day.
    """


@hookspec(firstresult=True)
def oms_channel_min_lag(channel: ChannelConfig) -> float | None:
    """How far behind now a pull window must end, in seconds (None: not yours).

    Some channels refuse (or silently miss) the most recent changes: Amazon's
    ``getOrders`` refuses ``LastUpdatedBefore`` later than two minutes ago. The
    OMS ends every window at ``now − lag``; the default lag is 0 seconds.
    """


@hookspec(firstresult=True)
def oms_channel_verify_webhook(channel: ChannelConfig, request: WebhookRequest) -> WebhookVerdict | None:
    """Check that a pushed request really comes from the channel.

    Called inside the web request: no network I/O. Verify the signature with
    the channel's secret (constant-time compare). Return a verdict, or ``None``
    if ``channel.kind`` is not yours. A rejected request gets HTTP 401 and is
    stored as REJECTED with your reason (a limited number an hour, truncated).
    An accepted verdict should carry the signed ``event_id`` and ``signed_at`` the
    channel sends, if any: the OMS then refuses replays (409) and stale requests (401).
    """


@hookspec(firstresult=True)
def oms_channel_expand_webhook(channel: ChannelConfig, body: dict) -> list[RawOrderPayload] | None:
    """Turn an accepted webhook body into the full order payloads it concerns.

    Runs in a job. A notification that carries only an order id (as POS
    ``order.created`` does) is answered by fetching the order. Return an empty
    list for notifications that concern no order, ``None`` if not yours.
    """


@hookspec(firstresult=True)
def oms_channel_parse_order(channel: ChannelConfig, body: dict) -> NormalizedOrder | None:
    """Map one raw order body (as returned by a fetch) to a :class:`NormalizedOrder`.

    Pure: no I/O. Raise ``PayloadError`` naming the missing or bad field when
    the body cannot be understood; the OMS keeps the message as FAILED with
    your error, and an operator can replay it after a fix. Return ``None`` if
    ``channel.kind`` is not yours.
    """


@hookspec(firstresult=True)
def oms_channel_push_stock(channel: ChannelConfig, pushes: list[StockPush]) -> list[StockPushResult] | None:
    """Set the sellable quantity of each listing at the channel.

    Runs in a job, debounced per channel and SKU. Quantities are already after
    the channel's share and buffer. Return one result per push, or ``None`` if
    not yours. Raise ``RetryableError`` when the whole call should be retried.
    """


@hookspec(firstresult=True)
def oms_channel_confirm_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    """Tell the channel that an order (or some of its lines) was shipped.

    Runs in a job and is retried until accepted. Return True once the channel
    accepted it (also when it says the order is already shipped), or ``None``
    if not yours.
    """


@hookspec(firstresult=True)
def oms_channel_retract_shipment(channel: ChannelConfig, shipment: ShipmentConfirmation) -> bool | None:
    """Tell the channel that a shipment it was told about (``oms_channel_confirm_shipment``,
    with the same ``shipment``) never left: it was cancelled at the carrier before collection.

    Runs in a job. Return True once the channel took it back, False when it refuses, or
    ``None`` if not yours or the marketplace offers no way to undo a shipment (the OMS then
    alerts the merchant to fix it in the seller console). Raise ``RetryableError`` to retry.
    """


# --- carrier plugins --------------------------------------------------------
#
# Every carrier hook but ``oms_carrier_kinds`` and ``oms_carrier_check_settings``
# takes the configured ``carrier`` (a CarrierConfig); return ``None`` when
# ``carrier.kind`` is not yours. All of them except ``oms_carrier_verify_webhook``
# and ``oms_carrier_parse_tracking_push`` run in a job and may use the network.


@hookspec
def oms_carrier_kinds() -> list[CarrierKind]:
    """Describe the carrier kinds this plugin provides (kind name, settings, abilities).

    Called once at start-up. ``settings`` works as for channels: secret fields are
    encrypted at rest and write-only in the API.
    """


@hookspec(firstresult=True)
def oms_carrier_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    """Check a carrier's ``settings`` beyond the generic checks (required keys, types).

    Return ``[(key, message), …]`` (empty when fine), or ``None`` if ``kind`` is not yours.
    """


@hookspec(firstresult=True)
def oms_carrier_services(carrier: CarrierConfig) -> list[CarrierService] | None:
    """The services the carrier sells, with their kind, handling, limits and areas.

    Pure: no I/O (describe from the settings). The OMS checks every shipment
    against these limits before it asks for a quote or a waybill.
    """


@hookspec(firstresult=True)
def oms_carrier_marketplace_code(carrier: CarrierConfig, service_code: str, channel_kind: str) -> str | None:
    """The carrier that carries a parcel of ``service_code``, as the marketplace ``channel_kind`` names it.

    Called when a shipment is confirmed to a sales channel (Taobao ``company_code``, JD
    ``logiCoprId``, Amazon ``carrierCode``). Pure: no I/O. For a carrier that is one
    company, ``CarrierKind.marketplace_codes`` says it once and this hook is not needed; a
    broker that sells other carriers' services (EasyPost: USPS, UPS…) answers here per
    service. Return ``None`` when you have no name for that marketplace (the kind's
    ``marketplace_codes`` are tried next).
    """


@hookspec(firstresult=True)
def oms_carrier_quote(carrier: CarrierConfig, request: ShipmentRequest) -> list[RateQuote] | None:
    """Price and delivery estimate of each of your services that can carry ``request``.

    ``request.service_code`` is empty: quote every service you can. Return an empty
    list when none can, ``None`` if not yours. Raise ``RetryableError`` when the
    carrier cannot answer now: the OMS then falls back on its rate table.
    """


@hookspec(firstresult=True)
def oms_carrier_create_waybill(carrier: CarrierConfig, request: ShipmentRequest) -> Waybill | None:
    """Create the shipment at the carrier: a tracking (waybill) number, and the label if it comes at once.

    Must be idempotent by ``request.reference``: a retry after a lost answer
    returns the first waybill (SF: look the order up on error 8016) instead of
    making a second one. ``PermanentError`` for an address or service the carrier
    refuses (the shipment is parked with a hold and an alert).
    """


@hookspec(firstresult=True)
def oms_carrier_fetch_label(carrier: CarrierConfig, waybill: Waybill) -> Label | None:
    """The printable label of a waybill created without one (SF cloud print: a PDF behind a URL)."""


@hookspec(firstresult=True)
def oms_carrier_cancel(carrier: CarrierConfig, waybill: Waybill) -> bool | None:
    """Cancel a waybill not yet handed over. True when cancelled (or already gone)."""


@hookspec(firstresult=True)
def oms_carrier_track(
    carrier: CarrierConfig, tracking_number: str, phone: str | None, company_code: str | None
) -> list[TrackingEvent] | None:
    """Every tracking event the carrier knows for ``tracking_number``, oldest first (a poll).

    ``phone`` is the recipient's phone, for carriers that ask for its last digits
    (SF ``checkPhoneNo``, Kuaidi100 ``phone``). ``company_code`` names the
    transporting carrier for tracking-only services, as in ``oms_carrier_subscribe``
    (Kuaidi100 cannot query a number without it). Duplicates are harmless.
    """


@hookspec(firstresult=True)
def oms_carrier_subscribe(
    carrier: CarrierConfig, tracking_number: str, company_code: str | None, callback_url: str, phone: str | None
) -> bool | None:
    """Ask the carrier to push this shipment's tracking to ``callback_url`` (Kuaidi100 ``poll``,
    EasyPost trackers). ``company_code`` names the transporting carrier for tracking-only
    services; ``phone`` is the recipient's phone, as for ``oms_carrier_track`` (Kuaidi100
    needs it for SF waybills). True when subscribed (also when it was already)."""


@hookspec(firstresult=True)
def oms_carrier_verify_webhook(carrier: CarrierConfig, request: WebhookRequest) -> WebhookVerdict | None:
    """Check that a pushed tracking request really comes from the carrier.

    Called inside the web request: no network I/O. Verify the signature
    (EasyPost ``X-Hmac-Signature``, Kuaidi100 ``sign``) or, for a carrier that does
    not sign (SF), the ``token`` in the URL against the ``webhookToken`` setting,
    in constant time. A refused request is answered 401 and kept as REJECTED.
    As for channels, an accepted verdict should carry the signed ``event_id`` and
    ``signed_at`` where the carrier sends them (EasyPost: the Event's ``id``).
    """


@hookspec(firstresult=True)
def oms_carrier_parse_tracking_push(carrier: CarrierConfig, body: bytes) -> TrackingPush | None:
    """Read an accepted tracking push: its events, and the answer the carrier expects.

    Pure: no I/O. Raise ``PayloadError`` naming what is wrong; the raw body is kept
    as FAILED and can be replayed.
    """


# --- notifier plugins -------------------------------------------------------


@hookspec
def oms_notify(alert: Alert) -> None:
    """Deliver an alert (low stock, delayed order, failed sync) to people.

    Called for every alert by every notifier plugin. Runs in a job: network I/O
    is allowed; raise ``RetryableError`` to have the delivery retried.
    """


# --- allocation strategy plugins -------------------------------------------


@hookspec(firstresult=True)
def oms_allocation_rank(request: AllocationRequest, candidates: list[CandidateLocation]) -> list[str] | None:
    """Order the candidate locations for an order, best first.

    Pure: no I/O. Return the location codes in the order to try: each line is
    then taken from the first of them with stock, spilling over to the next.
    Return ``None`` to leave the decision to the built-in engine
    (:mod:`oms_graphql.domain.allocation_plan`: fewest locations, then the lowest
    score of estimated shipping cost, distance, priority and stock balance).
    ``candidates`` hold only locations with free stock of at least one line.
    """


# --- stock change (channel stock push) --------------------------------------


@hookspec
def oms_stock_changed(channel_code: str, channel_kind: str, sku: str, quantity: int, locations: dict) -> None:
    """The sellable quantity of ``sku`` for one channel may have changed.

    Runs in a job, debounced per channel and SKU: a burst of stock movements
    (a wave of orders, a big receipt) ends in one call per channel and SKU a
    few seconds after the first change, with the figures as they are when the
    job runs. Called for every active channel except ``manual``; an
    implementation ignores channel kinds it does not own.

    * ``channel_code`` / ``channel_kind``: the channel (e.g. ``"tmall-flagship"``, ``"taobao"``).
    * ``sku``: our SKU; map it to the channel's listings yourself.
    * ``quantity``: what the channel may sell, already after its share and
      buffer: ``max(0, floor(total × stockSharePercent / 100) − stockBuffer)``.
    * ``locations``: ``{location code: available units}`` behind the total.

    Network I/O is allowed. Raise ``RetryableError`` to have this channel's
    call retried (other channels are not affected); the retry recomputes the
    figures. Return value is ignored.
    """
