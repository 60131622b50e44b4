"""Hook implementations of the ``sf`` carrier kind (SF Express Open Platform, 丰桥)."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from oms_graphql.plugins.calls import with_retries
from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierKind,
    CarrierService,
    DeliveryKind,
    Label,
    RateQuote,
    ShipmentRequest,
    TrackingEvent,
    TrackingPush,
    Waybill,
)
from oms_graphql.plugins.contract import (
    PayloadError,
    PermanentError,
    RetryableError,
    SettingField,
    WebhookRequest,
    WebhookVerdict,
)
from oms_graphql.plugins.hookspecs import hookimpl
from oms_plugin_sf.client import (
    DEFAULT_CALLS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
    SfBusinessError,
    SfClient,
)
from oms_plugin_sf.mapping import (
    CURRENCY,
    create_order_msg_data,
    delivertm_msg_data,
    events_from_routes,
    parse_route_push,
    quotes_from,
    search_routes_msg_data,
    waybill_from_order,
)

KIND = "sf"
CREATE_ORDER = "EXP_RECE_CREATE_ORDER"
SEARCH_ORDER = "EXP_RECE_SEARCH_ORDER_RESP"
UPDATE_ORDER = "EXP_RECE_UPDATE_ORDER"
SEARCH_ROUTES = "EXP_RECE_SEARCH_ROUTES"
QUERY_DELIVERTM = "EXP_RECE_QUERY_DELIVERTM"
CLOUD_PRINT = "COM_RECE_CLOUD_PRINT_WAYBILLS"
DUPLICATE_ORDER = "8016"  # 重复下单: this orderId was used before
ORDER_NOT_FOUND = {"8018", "6150"}  # 未获取到订单信息 / 找不到该订单
CANCEL = 2  # EXP_RECE_UPDATE_ORDER dealType: 1 confirm, 2 cancel
GATEWAY_PATH = "/std/service"
MONTHLY_CARD = re.compile(r"^\d{10}$")  # 月结卡号: 10 digits (SF error 6126)
MIN_WEBHOOK_TOKEN_LENGTH = 16
PDF_MAGIC = b"%PDF"
# SF refuses an order without a cargo name (1023); used when the shipment lists no items.
DEFAULT_CARGO_NAME = "商品"

# SF products (expressTypeId on create, businessType on the quote: the same product
# codes). 1 顺丰标快 is the product the samples create (its route label says so); 2 顺丰特惠
# is the product the samples quote. Weight limits per product are contractual and not in
# SF's API documentation (README "Limits, weights, formats"), so none is claimed here:
# the optional maxWeightGrams setting carries the merchant's contract limit. SF's API
# describes no cold-chain, fragile or hazmat handling for these products either.
SERVICE_PRODUCTS = {"express": "1", "standard": "2"}
SERVICE_NAMES = {"express": "顺丰标快 SF Standard Express", "standard": "顺丰特惠 SF Economy Express"}
SERVICE_KINDS = {"express": DeliveryKind.EXPRESS, "standard": DeliveryKind.STANDARD}
AREAS = ("CN",)  # mainland China; Hong Kong has its own gateway (sfapi-hk)
MAX_PARCELS = 307  # SF 8067/8117: more than 307 parcels in one order


@hookimpl
def oms_carrier_kinds() -> list[CarrierKind]:
    return [
        CarrierKind(
            kind=KIND,
            name="SF Express (顺丰速运)",
            settings=(
                SettingField(
                    "apiUrl",
                    "Gateway URL (…/std/service)",
                    kind="url",
                    help="sandbox https://sfapi-sbox.sf-express.com/std/service, "
                    "production https://bspgw.sf-express.com/std/service",
                ),
                SettingField("partnerId", "Customer code (顾客编码 / partnerID)"),
                SettingField("checkWord", "Check word (校验码)", secret=True),
                SettingField("monthlyCard", "Monthly account number (月结卡号, 10 digits)"),
                SettingField(
                    "webhookToken",
                    "Route-push token",
                    secret=True,
                    help="register https://<oms>/webhooks/carriers/<code>?token=<this token> "
                    "as the route push URL in the 丰桥 console",
                ),
                SettingField(
                    "labelTemplate",
                    "Cloud-print template code",
                    required=False,
                    help="default fm_150_standard_<partnerId> (100×150 mm)",
                ),
                SettingField(
                    "maxWeightGrams",
                    "Heaviest shipment your SF contract accepts, in grams",
                    kind="int",
                    required=False,
                ),
                SettingField(
                    "timeoutSeconds",
                    "HTTP timeout in seconds",
                    kind="int",
                    required=False,
                    default=int(DEFAULT_TIMEOUT_SECONDS),
                ),
                SettingField(
                    "callsPerSecond",
                    "Most SF calls per second for this customer",
                    kind="int",
                    required=False,
                    default=DEFAULT_CALLS_PER_SECOND,
                ),
            ),
            creates_waybills=True,
            receives_webhooks=True,
            # JD names carriers by logistics company id (logiCoprId): 467 is 顺丰速运. The
            # samples have no carrier list (only 2087, JD's own, on a shipped order); 467 is
            # the id JD integrations publish for SF beside 2087 for 京东快递.
            marketplace_codes={"taobao": "SF", "jd": "467", "amazon": "SF Express"},
        )
    ]


@hookimpl
def oms_carrier_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    problems = []
    api_url = str(settings.get("apiUrl") or "")
    if not api_url.startswith(("http://", "https://")) or not api_url.rstrip("/").endswith(GATEWAY_PATH):
        problems.append(
            (
                "apiUrl",
                "Use the full gateway URL ending in /std/service, e.g. https://sfapi-sbox.sf-express.com/std/service",
            )
        )
    partner_id = str(settings.get("partnerId") or "")
    if not partner_id or len(partner_id) > 64:
        problems.append(("partnerId", "Give the customer code (顾客编码) from the 丰桥 console, at most 64 characters"))
    if not str(settings.get("checkWord") or ""):
        problems.append(("checkWord", "Give the check word (校验码) from the 丰桥 console"))
    if not MONTHLY_CARD.match(str(settings.get("monthlyCard") or "")):
        problems.append(
            ("monthlyCard", "Give SF's 10-digit monthly account number (月结卡号); the sandbox uses 7551234567")
        )
    if len(str(settings.get("webhookToken") or "")) < MIN_WEBHOOK_TOKEN_LENGTH:
        problems.append(
            (
                "webhookToken",
                f"SF does not sign its pushes, so the URL token is their only check: use at least "
                f"{MIN_WEBHOOK_TOKEN_LENGTH} random characters "
                "(python -c 'import secrets; print(secrets.token_urlsafe(24))')",
            )
        )
    for key in ("maxWeightGrams", "timeoutSeconds", "callsPerSecond"):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            problems.append((key, "Give a positive number"))
    return problems


@hookimpl
def oms_carrier_services(carrier: CarrierConfig) -> list[CarrierService] | None:
    if carrier.kind != KIND:
        return None
    max_weight = carrier.settings.get("maxWeightGrams")
    return [
        CarrierService(
            code=code,
            name=SERVICE_NAMES[code],
            kind=SERVICE_KINDS[code],
            max_weight_grams=int(max_weight) if max_weight else None,
            max_parcels=MAX_PARCELS,
            areas=AREAS,
            currency=CURRENCY,
        )
        for code in SERVICE_PRODUCTS
    ]


@hookimpl
def oms_carrier_quote(carrier: CarrierConfig, request: ShipmentRequest) -> list[RateQuote] | None:
    if carrier.kind != KIND:
        return None
    codes = [request.service_code] if request.service_code else list(SERVICE_PRODUCTS)
    codes = [code for code in codes if code in SERVICE_PRODUCTS]
    if request.recipient.country not in AREAS or request.sender.country not in AREAS:
        return []
    consigned_at = request.ship_at or datetime.now(UTC)
    by_product = {product: code for code, product in SERVICE_PRODUCTS.items()}
    quotes: list[RateQuote] = []
    with client_for(carrier) as client:
        for code in codes:
            try:
                answer = client.call(QUERY_DELIVERTM, delivertm_msg_data(request, SERVICE_PRODUCTS[code], consigned_at))
            except SfBusinessError:
                continue  # this product does not serve the route: quote the others
            quotes.extend(quotes_from(answer, by_product))
    return quotes


@hookimpl
def oms_carrier_create_waybill(carrier: CarrierConfig, request: ShipmentRequest) -> Waybill | None:
    if carrier.kind != KIND:
        return None
    product = SERVICE_PRODUCTS.get(request.service_code)
    if product is None:
        raise PermanentError(f"SF has no service {request.service_code!r}: choose one of {', '.join(SERVICE_PRODUCTS)}")
    msg_data = create_order_msg_data(
        request,
        monthly_card=str(_setting(carrier, "monthlyCard")),
        express_type_id=int(product),
        cargo_name=DEFAULT_CARGO_NAME,
    )
    with client_for(carrier) as client:
        try:
            order = client.call(CREATE_ORDER, msg_data)
        except SfBusinessError as error:
            if error.code != DUPLICATE_ORDER:
                raise PermanentError(f"SF refused the waybill for shipment {request.reference}: {error}") from error
            # The orderId was used before: an earlier try went through but its answer was
            # lost. SF documents EXP_RECE_SEARCH_ORDER_RESP for exactly this: fetch that
            # first order's waybill instead of creating a second (README "Idempotency").
            order = find_order(client, request.reference)
    return waybill_from_order(order, request.reference)


def find_order(client: SfClient, reference: str) -> dict:
    try:
        return client.call(SEARCH_ORDER, {"searchType": "1", "orderId": reference, "language": "zh-CN"})
    except SfBusinessError as error:
        if error.code in ORDER_NOT_FOUND:
            # SF just said the orderId exists: its lookup has not caught up yet.
            raise RetryableError(
                f"SF says shipment {reference} was ordered before but cannot find the order yet: {error}"
            ) from error
        raise


@hookimpl
def oms_carrier_fetch_label(carrier: CarrierConfig, waybill: Waybill) -> Label | None:
    if carrier.kind != KIND:
        return None
    template = carrier.settings.get("labelTemplate") or f"fm_150_standard_{_setting(carrier, 'partnerId')}"
    msg_data = {
        "templateCode": template,
        "version": "2.0",
        "fileType": "pdf",
        "sync": True,
        "documents": [{"masterWaybillNo": waybill.tracking_number}],
    }
    with client_for(carrier) as client:

        def print_and_download() -> bytes:
            # The PDF is not in the answer: a temporary link plus a token (README "Label").
            # A failed download prints again, for a fresh link.
            printed = client.call_once(CLOUD_PRINT, msg_data)
            url, token = label_file(printed, waybill.tracking_number)
            return client.download(url, token)

        content = with_retries(print_and_download)
    if not content.startswith(PDF_MAGIC):
        raise PayloadError(f"SF label of {waybill.tracking_number} is not a PDF (starts {content[:8]!r})")
    return Label(content=content, media_type="application/pdf")


def label_file(printed: dict, tracking_number: str) -> tuple[str, str]:
    files = printed.get("files")
    if not isinstance(files, list) or not files:
        raise PayloadError(f"SF {CLOUD_PRINT} for {tracking_number}: 'obj.files' holds no file")
    # One file per parcel of the master waybill; the first one is the master's label.
    mine = [entry for entry in files if isinstance(entry, dict) and entry.get("waybillNo") == tracking_number]
    entry = (mine or [entry for entry in files if isinstance(entry, dict)] or [{}])[0]
    if not entry.get("url") or not entry.get("token"):
        raise PayloadError(f"SF {CLOUD_PRINT} for {tracking_number}: the file has no 'url' or 'token'")
    return str(entry["url"]), str(entry["token"])


@hookimpl
def oms_carrier_cancel(carrier: CarrierConfig, waybill: Waybill) -> bool | None:
    if carrier.kind != KIND:
        return None
    if not waybill.carrier_reference:
        raise PermanentError(
            f"SF waybill {waybill.tracking_number} has no SF orderId (carrier reference): cancel it in the 丰桥 console"
        )
    with client_for(carrier) as client:
        try:
            client.call(UPDATE_ORDER, {"orderId": waybill.carrier_reference, "dealType": CANCEL})
        except SfBusinessError as error:
            # The error code for "already collected" is not documented (README section 5).
            raise PermanentError(
                f"SF would not cancel waybill {waybill.tracking_number}: {error}. "
                "If the courier already collected it, ask SF to intercept it instead"
            ) from error
    return True


@hookimpl
def oms_carrier_track(carrier: CarrierConfig, tracking_number: str, phone: str | None) -> list[TrackingEvent] | None:
    if carrier.kind != KIND:
        return None
    with client_for(carrier) as client:
        answer = client.call(SEARCH_ROUTES, search_routes_msg_data(tracking_number, phone))
    return events_from_routes(answer, tracking_number)


@hookimpl
def oms_carrier_verify_webhook(carrier: CarrierConfig, request: WebhookRequest) -> WebhookVerdict | None:
    if carrier.kind != KIND:
        return None
    # SF signs no route push (README "Route push"): the unguessable token in the URL
    # registered in the 丰桥 console is the only proof.
    expected = str(carrier.settings.get("webhookToken") or "")
    if not expected:
        return WebhookVerdict(False, "the carrier has no webhookToken setting: set one and register the URL with it")
    given = parse_qs(urlsplit(request.url).query).get("token", [""])[0]
    if not given:
        return WebhookVerdict(False, "the push URL has no ?token=")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        return WebhookVerdict(False, "the push URL's token does not match the webhookToken setting")
    return WebhookVerdict(True)


@hookimpl
def oms_carrier_parse_tracking_push(carrier: CarrierConfig, body: bytes) -> TrackingPush | None:
    if carrier.kind != KIND:
        return None
    return parse_route_push(body)


def client_for(carrier: CarrierConfig) -> SfClient:
    settings = carrier.settings
    return SfClient(
        api_url=str(_setting(carrier, "apiUrl")),
        partner_id=str(_setting(carrier, "partnerId")),
        checkword=str(_setting(carrier, "checkWord")),
        timeout=float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
        calls_per_second=float(settings.get("callsPerSecond") or DEFAULT_CALLS_PER_SECOND),
    )


def _setting(carrier: CarrierConfig, key: str) -> object:
    value = carrier.settings.get(key)
    if value in (None, ""):
        raise PermanentError(f"SF carrier {carrier.code}: setting {key!r} is missing")
    return value
