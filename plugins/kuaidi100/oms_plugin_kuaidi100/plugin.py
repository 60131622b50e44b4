"""Hook implementations of the ``kuaidi100`` carrier kind: tracking only, for any carrier.

Kuaidi100 (快递100) creates no waybills; it tracks numbers of any transporting
carrier named by its Kuaidi100 company code (``shunfeng``, ``zhongtong``…), by
a signed query (``poll/query.do``) or by a subscription (``poll``) whose pushes
are signed with the ``salt`` setting (carrier-samples README section 2).

``oms_carrier_services`` returns an empty list: Kuaidi100 sells no delivery, and
every CarrierService becomes a delivery option the OMS may offer and choose.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from oms_graphql.plugins.carrier_contract import (
    CarrierConfig,
    CarrierKind,
    CarrierService,
    TrackingEvent,
    TrackingPush,
)
from oms_graphql.plugins.contract import PayloadError, PermanentError, SettingField, WebhookRequest, WebhookVerdict
from oms_graphql.plugins.hookspecs import hookimpl
from oms_plugin_kuaidi100.client import (
    DEFAULT_API_URL,
    DEFAULT_CALLS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
    PUSH_ACK,
    Kuaidi100Client,
    compact_json,
    push_sign_matches,
)
from oms_plugin_kuaidi100.mapping import push_payload, tracking_events

KIND = "kuaidi100"
# resultv2=4: advanced status codes and routeInfo (README "Real-time query").
RESULT_VERSION = "4"


@hookimpl
def oms_carrier_kinds() -> list[CarrierKind]:
    return [
        CarrierKind(
            kind=KIND,
            name="Kuaidi100 (快递100) tracking",
            settings=(
                SettingField("apiUrl", "Kuaidi100 API URL", kind="url", default=DEFAULT_API_URL),
                SettingField("customer", "Customer id (公司编号)"),
                SettingField("key", "Authorisation key (授权key)", secret=True),
                SettingField("salt", "Salt that signs the pushes", secret=True),
                SettingField(
                    "company",
                    "Default company code",
                    required=False,
                    help="Used when a shipment names no company, e.g. shunfeng, zhongtong, yuantong",
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
                    "Most Kuaidi100 calls per second for this customer",
                    kind="int",
                    required=False,
                    default=DEFAULT_CALLS_PER_SECOND,
                ),
            ),
            creates_waybills=False,
            receives_webhooks=True,
        )
    ]


@hookimpl
def oms_carrier_check_settings(kind: str, settings: dict) -> list[tuple[str, str]] | None:
    if kind != KIND:
        return None
    problems = []
    if not str(settings.get("apiUrl") or "").startswith(("http://", "https://")):
        problems.append(("apiUrl", f"Use the full API URL, e.g. {DEFAULT_API_URL}"))
    for key, what in (
        ("customer", "the customer id (公司编号) from the Kuaidi100 console"),
        ("key", "the authorisation key (授权key) from the Kuaidi100 console"),
        # An empty salt leaves pushes unverifiable (Kuaidi100 still sends a sign, to be ignored).
        ("salt", "a random salt of at least 16 characters; pushes are signed with it"),
    ):
        if not str(settings.get(key) or "").strip():
            problems.append((key, f"Give {what}"))
    salt = str(settings.get("salt") or "")
    if salt and len(salt) < 16:
        problems.append(("salt", "Use at least 16 characters: the salt is what makes a push unforgeable"))
    company = settings.get("company")
    if company is not None and (not isinstance(company, str) or company != company.strip().lower()):
        problems.append(("company", "Give the Kuaidi100 company code in lower case, e.g. shunfeng"))
    for key, what in (("timeoutSeconds", "seconds"), ("callsPerSecond", "calls per second")):
        value = settings.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            problems.append((key, f"Give a positive number of {what}"))
    return problems


@hookimpl
def oms_carrier_services(carrier: CarrierConfig) -> list[CarrierService] | None:
    if carrier.kind != KIND:
        return None
    return []  # tracking only: nothing to offer as a delivery option (module docstring)


@hookimpl
def oms_carrier_track(
    carrier: CarrierConfig, tracking_number: str, phone: str | None, company_code: str | None
) -> list[TrackingEvent] | None:
    if carrier.kind != KIND:
        return None
    param = {"com": company_for(carrier, company_code), "num": tracking_number}
    if phone:
        param["phone"] = phone  # required for SF waybills
    param.update(resultv2=RESULT_VERSION, show="0", order="desc")
    with client_for(carrier) as client:
        reply = client.query(param)
    if reply is None:
        return []  # "查询无结果": nothing scanned yet
    return tracking_events(reply, "query reply")


@hookimpl
def oms_carrier_subscribe(
    carrier: CarrierConfig, tracking_number: str, company_code: str | None, callback_url: str, phone: str | None
) -> bool | None:
    if carrier.kind != KIND:
        return None
    salt = str(carrier.settings.get("salt") or "")
    if not salt:
        # Without a salt the pushes cannot be told from forgeries (verify refuses them all).
        raise PermanentError(f"Kuaidi100 carrier {carrier.code}: set the 'salt' setting before subscribing")
    parameters = {"callbackurl": callback_url, "salt": salt, "resultv2": RESULT_VERSION}
    if phone:
        parameters["phone"] = phone
    param = {"company": company_for(carrier, company_code), "number": tracking_number, "parameters": parameters}
    with client_for(carrier) as client:
        return client.subscribe(param)  # a repeated subscription (501 重复订阅) counts as subscribed


@hookimpl
def oms_carrier_verify_webhook(carrier: CarrierConfig, request: WebhookRequest) -> WebhookVerdict | None:
    if carrier.kind != KIND:
        return None
    salt = str(carrier.settings.get("salt") or "")
    if not salt:
        return WebhookVerdict(False, "the carrier has no salt setting, so its pushes cannot be verified")
    try:
        form = push_form(request.body)
    except PayloadError as error:
        return WebhookVerdict(False, str(error))
    if "sign" not in form:
        return WebhookVerdict(False, "the push has no 'sign' field")
    if not push_sign_matches(form["param"], form["sign"], salt):
        return WebhookVerdict(False, "'sign' does not match md5(param + salt): not from Kuaidi100, or another salt")
    return WebhookVerdict(True)


@hookimpl
def oms_carrier_parse_tracking_push(carrier: CarrierConfig, body: bytes) -> TrackingPush | None:
    if carrier.kind != KIND:
        return None
    payload = push_payload(push_form(body)["param"])
    # Every push is a full snapshot (polling, shutdown, updateall); "abort" carries no
    # events and means Kuaidi100 stopped tracking (README: check the number, resubscribe).
    events = tracking_events(payload["lastResult"], "push lastResult")
    return TrackingPush(
        events=tuple(events),
        response_body=compact_json(PUSH_ACK).encode("utf-8"),
        response_media_type="application/json;charset=UTF-8",
    )


def push_form(body: bytes) -> dict[str, str]:
    """The push's form fields (``param``, ``sign``), decoded exactly as they travel."""
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("Kuaidi100 push body is not a UTF-8 form (param=…&sign=…)") from None
    form = {name: values[0] for name, values in fields.items()}
    if "param" not in form:
        raise PayloadError("Kuaidi100 push has no 'param' field")
    return form


def company_for(carrier: CarrierConfig, company_code: str | None) -> str:
    company = company_code or carrier.settings.get("company")
    if not company:
        raise PermanentError(
            f"Kuaidi100 carrier {carrier.code}: no company code for this number; "
            "give the shipment's transporting carrier or set the 'company' setting"
        )
    return str(company)


def client_for(carrier: CarrierConfig) -> Kuaidi100Client:
    settings = carrier.settings
    try:
        return Kuaidi100Client(
            api_url=str(settings.get("apiUrl") or DEFAULT_API_URL),
            customer=str(settings["customer"]),
            key=str(settings["key"]),
            timeout=float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
            calls_per_second=float(settings.get("callsPerSecond") or DEFAULT_CALLS_PER_SECOND),
        )
    except KeyError as missing:
        raise PermanentError(f"Kuaidi100 carrier {carrier.code}: setting {missing} is missing") from None
