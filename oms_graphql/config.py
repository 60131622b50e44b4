"""Settings from environment variables (OMS_*), read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


DEFAULT_COST_LIMITS = {
    "ADMIN": 20000,
    "OPERATOR": 20000,
    "INTEGRATION": 20000,
    "VIEWER": 10000,
    "CUSTOMER": 2000,
    "ANONYMOUS": 500,
}


def _role_numbers(text: str | None, defaults: dict[str, int]) -> dict[str, int]:
    """``ADMIN=20000,CUSTOMER=2000``: the given roles' numbers over the defaults."""
    numbers = dict(defaults)
    for part in (text or "").split(","):
        role, _, value = part.partition("=")
        if role.strip() and value.strip():
            numbers[role.strip().upper()] = int(value)
    return numbers


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///./oms.db"
    broker_url: str = "memory"
    # Prefix of the broker's Redis keys, so several OMS installs (or test runs) can share one Redis.
    broker_namespace: str = "dramatiq"
    redis_url: str | None = None
    secret_key: str = "dev-insecure-secret-change-me"
    # Keys that encrypted channel and carrier secrets before OMS_SECRET_KEY: still read,
    # never written with; `oms secrets rotate` re-encrypts everything with OMS_SECRET_KEY.
    previous_secret_keys: tuple[str, ...] = ()
    # Role given to callers that send no token. Empty in production; `make run`
    # sets it to ADMIN so GraphiQL on a laptop works without a token.
    anonymous_role: str | None = None
    log_level: str = "INFO"
    log_json: bool = False
    max_query_depth: int = 12
    hide_introspection: bool = False
    graphiql: bool = True
    # OMS_PRODUCTION=1: introspection and GraphiQL off, and `oms serve` refuses an
    # anonymous role or the development secret key.
    production: bool = False
    # JWTs from a front-end's identity provider (see domain/identities.py and the README).
    jwt_key: str | None = None  # an HS256 shared secret, or a PEM public key (RS256/ES256), or @path to one
    jwt_jwks_file: str | None = None  # a JWKS file: the key is picked by the token's "kid"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_role_claim: str = "oms_role"
    jwt_default_role: str | None = "CUSTOMER"
    jwt_allowed_roles: tuple[str, ...] = ("OPERATOR", "VIEWER", "CUSTOMER")
    jwt_customer_claim: str = "oms_customer_id"
    jwt_identity_kind: str | None = None  # e.g. "email": map a claim through customer identities of this kind
    jwt_identity_claim: str = "sub"
    jwt_leeway_seconds: float = 30.0
    embedded_workers: int = 2
    # Channels: how often the scheduler looks for due polls, how long a SKU's stock
    # must be quiet before it is pushed, and when a stored message counts as stuck.
    channel_tick_seconds: float = 5.0
    channel_scheduler: bool = True  # False: this process's workers never start channel pulls
    stock_push_debounce_seconds: float = 5.0
    stuck_message_seconds: float = 300.0
    # A pull's lease is renewed while it runs; a dead worker's lapses after this long.
    channel_pull_lease_seconds: float = 60.0
    # Reconciliation (补单): how often each channel's trailing window is listed again
    # (0: never), and how far back that window reaches.
    channel_reconcile_seconds: float = 3600.0
    channel_reconcile_hours: float = 24.0
    # Tracking: how often an open shipment's carrier is polled (0: only pushes).
    tracking_poll_seconds: float = 1800.0
    # Hostile documents (README "Limits"): the largest request body read, the deepest JSON
    # nesting accepted, the largest document kept in the parse/validation caches, and the
    # time one operation may run.
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 64
    cache_document_max_bytes: int = 16 * 1024
    request_timeout_seconds: float = 30.0
    # Query cost: the most one operation may cost, per role ("ANONYMOUS" for no token);
    # each caller's bucket holds ``cost_bucket_factor`` maximal operations and refills by
    # ``cost_restore_factor`` of one per second.
    cost_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_COST_LIMITS))
    cost_bucket_factor: float = 10.0
    cost_restore_factor: float = 1.0
    # Webhooks: the largest body, how old a signed timestamp may be, and how many refused
    # deliveries (and how much of each) are kept per channel or carrier an hour.
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_tolerance_seconds: float = 86400.0
    webhook_rejected_per_hour: int = 100
    webhook_rejected_body_bytes: int = 16 * 1024
    # /metrics: a bearer token it requires, and/or the client networks it answers.
    metrics_token: str | None = None
    metrics_allow: tuple[str, ...] = ()
    # Reports bucket orders by their placed day in this zone (an IANA name); after changing
    # it, run `oms report rebuild` so the stored daily aggregates follow.
    report_timezone: str = "Asia/Shanghai"
    # The stored reorder forecasts are refreshed once a day at this hour of the report time
    # zone (None: never; `oms report forecasts` from cron instead).
    forecast_refresh_hour: int | None = 3
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def jwt_configured(self) -> bool:
        return bool(self.jwt_key or self.jwt_jwks_file)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def pubsub_url(self) -> str | None:
        """Redis for cross-process subscriptions: OMS_REDIS_URL, else the broker's Redis."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith("redis://"):
            return self.broker_url
        return None


def _words(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def load_settings() -> Settings:
    production = _env("OMS_PRODUCTION", "0") == "1"
    return Settings(
        database_url=_env("OMS_DATABASE_URL", Settings.database_url) or Settings.database_url,
        broker_url=_env("OMS_BROKER_URL", "memory") or "memory",
        broker_namespace=_env("OMS_BROKER_NAMESPACE", "dramatiq") or "dramatiq",
        redis_url=_env("OMS_REDIS_URL"),
        secret_key=_env("OMS_SECRET_KEY", Settings.secret_key) or Settings.secret_key,
        previous_secret_keys=_words(_env("OMS_PREVIOUS_SECRET_KEYS")),
        anonymous_role=(_env("OMS_ANONYMOUS_ROLE") or None),
        log_level=_env("OMS_LOG_LEVEL", "INFO") or "INFO",
        log_json=_env("OMS_LOG_JSON", "0") == "1",
        hide_introspection=_env("OMS_HIDE_INTROSPECTION", "1" if production else "0") == "1",
        graphiql=_env("OMS_GRAPHIQL", "0" if production else "1") == "1",
        production=production,
        jwt_key=_env("OMS_JWT_KEY"),
        jwt_jwks_file=_env("OMS_JWT_JWKS_FILE"),
        jwt_issuer=_env("OMS_JWT_ISSUER"),
        jwt_audience=_env("OMS_JWT_AUDIENCE"),
        jwt_role_claim=_env("OMS_JWT_ROLE_CLAIM", "oms_role") or "oms_role",
        jwt_default_role=_env("OMS_JWT_DEFAULT_ROLE", "CUSTOMER"),
        jwt_allowed_roles=_words(_env("OMS_JWT_ALLOWED_ROLES", "OPERATOR,VIEWER,CUSTOMER")),
        jwt_customer_claim=_env("OMS_JWT_CUSTOMER_CLAIM", "oms_customer_id") or "oms_customer_id",
        jwt_identity_kind=_env("OMS_JWT_IDENTITY_KIND"),
        jwt_identity_claim=_env("OMS_JWT_IDENTITY_CLAIM", "sub") or "sub",
        jwt_leeway_seconds=float(_env("OMS_JWT_LEEWAY_SECONDS", "30") or 30),
        embedded_workers=int(_env("OMS_EMBEDDED_WORKERS", "2") or 2),
        channel_tick_seconds=float(_env("OMS_CHANNEL_TICK_SECONDS", "5") or 5),
        channel_scheduler=_env("OMS_CHANNEL_SCHEDULER", "1") != "0",
        stock_push_debounce_seconds=float(_env("OMS_STOCK_PUSH_DEBOUNCE_SECONDS", "5") or 5),
        stuck_message_seconds=float(_env("OMS_STUCK_MESSAGE_SECONDS", "300") or 300),
        channel_pull_lease_seconds=float(_env("OMS_CHANNEL_PULL_LEASE_SECONDS", "60") or 60),
        channel_reconcile_seconds=float(_env("OMS_CHANNEL_RECONCILE_SECONDS", "3600") or 0),
        channel_reconcile_hours=float(_env("OMS_CHANNEL_RECONCILE_HOURS", "24") or 24),
        tracking_poll_seconds=float(_env("OMS_TRACKING_POLL_SECONDS", "1800") or 0),
        max_body_bytes=int(_env("OMS_MAX_BODY_BYTES") or Settings.max_body_bytes),
        max_json_depth=int(_env("OMS_MAX_JSON_DEPTH") or Settings.max_json_depth),
        cache_document_max_bytes=int(_env("OMS_CACHE_DOCUMENT_MAX_BYTES") or Settings.cache_document_max_bytes),
        request_timeout_seconds=float(_env("OMS_REQUEST_TIMEOUT_SECONDS") or Settings.request_timeout_seconds),
        cost_limits=_role_numbers(_env("OMS_COST_LIMITS"), DEFAULT_COST_LIMITS),
        cost_bucket_factor=float(_env("OMS_COST_BUCKET_FACTOR") or Settings.cost_bucket_factor),
        cost_restore_factor=float(_env("OMS_COST_RESTORE_FACTOR") or Settings.cost_restore_factor),
        webhook_max_body_bytes=int(_env("OMS_WEBHOOK_MAX_BODY_BYTES") or Settings.webhook_max_body_bytes),
        webhook_tolerance_seconds=float(_env("OMS_WEBHOOK_TOLERANCE_SECONDS") or Settings.webhook_tolerance_seconds),
        webhook_rejected_per_hour=int(_env("OMS_WEBHOOK_REJECTED_PER_HOUR") or Settings.webhook_rejected_per_hour),
        webhook_rejected_body_bytes=int(
            _env("OMS_WEBHOOK_REJECTED_BODY_BYTES") or Settings.webhook_rejected_body_bytes
        ),
        metrics_token=_env("OMS_METRICS_TOKEN"),
        metrics_allow=tuple(part.strip() for part in (_env("OMS_METRICS_ALLOW") or "").split(",") if part.strip()),
        report_timezone=_env("OMS_REPORT_TIMEZONE", "Asia/Shanghai") or "Asia/Shanghai",
        forecast_refresh_hour=_hour(_env("OMS_FORECAST_REFRESH_HOUR", "3")),
    )


def _hour(value: str | None) -> int | None:
    if value is None or value.strip().lower() == "off":
        return None
    hour = int(value)
    if not 0 <= hour <= 23:
        raise ValueError(f"OMS_FORECAST_REFRESH_HOUR must be an hour from 0 to 23, or off; got {value!r}.")
    return hour


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
