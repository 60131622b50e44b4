"""Secrets are never printed: not in the server's log, not in errors kept in the database,
not in any GraphQL answer. Masked by key (secret, token, session, signature…) and by value
(every configured secret of a channel or carrier).

The Taobao seller token (``session``) travels in the query string of every gateway call,
so a log line per outbound request, or an error quoting the URL, would give it away.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.channel_support import SYNC, create_channel, sync_until, taobao_settings
from tests.conftest import fresh_database
from tests.fakes import taobao
from tests.fakes.server import free_port, serve
from tests.support import GraphQLClient, create_token, eventually, wait_until_ready

CHANNELS = "{ channels { code settings secretSettingsSet lastError } }"
EVERYTHING_ABOUT_IT = """query($code: String) {
  channels { code settings secretSettingsSet lastError }
  inboundMessages(first: 50, filter: {channelCode: $code}) { edges { node { body error outcome } } }
  alerts(first: 50) { edges { node { kind message } } }
  orders(first: 50, filter: {channelCode: $code}) { edges { node { number holds { note } } } }
}"""
CHANNEL_CREATE = """mutation($input: ChannelCreateInput!) {
  channelCreate(input: $input) { channel { code } userErrors { field message code } } }"""
CARRIER_CREATE = """mutation($input: CarrierCreateInput!) {
  carrierCreate(input: $input) { carrier { code } userErrors { field message code } } }"""


@contextmanager
def oms_serve_logging_to(database_url: str, log: Path) -> Iterator[str]:
    """`oms serve` (embedded workers) at the default log level, its whole output kept in ``log``."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "OMS_LOG_LEVEL"}
    env.update(OMS_DATABASE_URL=database_url, OMS_BROKER_URL="memory", OMS_CHANNEL_TICK_SECONDS="0.5")
    env.pop("OMS_REDIS_URL", None)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(process, base, log.read_text)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=15)


def test_a_taobao_pull_never_prints_the_seller_session(uid, tmp_path):
    state = taobao.TaobaoState(
        load_samples=False, session=f"6100{uid.lower()}seller0session", app_secret=f"appsecret{uid.lower()}0042"
    )
    tid = state.add_trade(status="WAIT_SELLER_SEND_GOODS", modified=datetime.now(UTC) - timedelta(minutes=30))
    secrets = (state.session, state.app_secret)
    log = tmp_path / "oms-serve.log"
    answers: list[str] = []
    code = f"tb-red-{uid}".lower()
    with (
        fresh_database() as database_url,
        serve(taobao.make_app(state)) as shop,
        oms_serve_logging_to(database_url, log) as api,
    ):
        admin = GraphQLClient(api, create_token(database_url, "ADMIN", "redaction"))
        create_channel(
            admin,
            code,
            "taobao",
            taobao_settings(shop, state),
            syncFrom=(datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        )
        sync_until(admin, code, tid)
        # A firewall in front of the gateway now blocks the calls, quoting the request URL.
        state.inject("proxy_403", times=50)

        def blocked_now() -> dict | None:
            answers.append(admin.post(SYNC, {"code": code}).text)
            time.sleep(0.5)
            return next((c for c in admin(CHANNELS)["channels"] if c["code"] == code and c["lastError"]), None)

        blocked = eventually(blocked_now, timeout=40)
        assert "403" in blocked["lastError"] and "***" in blocked["lastError"]
        answers.append(admin.post(EVERYTHING_ABOUT_IT, {"code": code}).text)
        # Asking with a bad setting echoes nothing either.
        answers.append(admin.post(CHANNEL_CREATE, {"input": {"code": code, "kind": "taobao", "settings": {
            "session": state.session, "appSecret": state.app_secret}}}).text)  # fmt: skip
    server_log = log.read_text()
    assert "channel pulled" in server_log  # the default level (INFO) was on: the pull was logged
    assert any(state.session in call["query"].get("session", "") for call in state.calls)  # it was sent
    for secret in secrets:
        assert secret not in server_log
        for answer in answers:
            assert secret not in answer


def test_a_bad_setting_or_bad_input_never_echoes_a_secret(admin, uid):
    secret = f"s3cret-{uid}-value"
    session = f"sess-{uid}-value"
    settings = {"apiUrl": "https://eco.taobao.com/router/rest", "appKey": "1", "appSecret": secret, "session": session}
    attempts = [
        # graphql-core quotes the whole input when a required field is missing…
        (CHANNEL_CREATE, {"input": {"code": f"r-{uid}".lower(), "kind": "taobao", "settings": settings}}),
        # …or when a field has the wrong type.
        (CHANNEL_CREATE, {"input": {"code": 5, "name": "x", "kind": "taobao", "settings": settings}}),
        # Settings the plugin refuses, next to the secrets.
        (
            CHANNEL_CREATE,
            {"input": {"code": f"r-{uid}".lower(), "name": "x", "kind": "taobao", "settings": {**settings, "x": 1}}},
        ),
        (
            CHANNEL_CREATE,
            {
                "input": {
                    "code": f"r-{uid}".lower(),
                    "name": "x",
                    "kind": "taobao",
                    "settings": {**settings, "signMethod": f"sha1 {secret}"},
                }
            },
        ),
        (CARRIER_CREATE, {"input": {"code": f"c-{uid}".lower(), "kind": "sf", "settings": {"checkWord": secret}}}),
        (
            CARRIER_CREATE,
            {
                "input": {
                    "code": f"c-{uid}".lower(),
                    "name": "x",
                    "kind": "sf",
                    "settings": {"checkWord": secret, "n": 1},
                }
            },
        ),
    ]
    for query, variables in attempts:
        response = admin.post(query, variables)
        assert response.status_code < 500
        body = response.json()
        assert body.get("errors") or any(p["userErrors"] for p in (body.get("data") or {}).values()), body
        assert secret not in response.text and session not in response.text, response.text


LOGGING_SCRIPT = """
import logging, structlog
from oms_graphql.config import get_settings
from oms_graphql.domain.plugin_settings import encrypt_secrets
from oms_graphql.logs import configure_logging

configure_logging(get_settings())  # what every `oms` command does first
encrypt_secrets({"accessToken": "EAAAl-known-pos-token"})  # stored now: masked from here on
logging.getLogger("oms_graphql.test").warning("pos said: bad token EAAAl-known-pos-token for shop")
logging.getLogger("httpx").warning("HTTP Request: GET https://x/api?access_token=abcdef123&page=2")
logging.getLogger("dramatiq").error("broker lost: redis://:hunter2-broker@redis:6379/0")
logging.getLogger("httpx").info("HTTP Request: GET https://x/api?unmasked=1 (below WARNING: not shown)")
structlog.get_logger("test").warning(
    "call failed", url="https://x/rest?session=6100zz&sign=ABC", settings={"appSecret": "plain-text-secret"}
)
try:
    raise RuntimeError("Taobao answered 403 for https://gw/rest?app_key=1&session=6100traceback")
except RuntimeError:
    logging.getLogger("oms_graphql.test").exception("with a traceback")
    structlog.get_logger("test").exception("and through structlog")
"""


def test_log_lines_are_masked_by_key_and_by_value():
    # A process of its own: logging is configured once per process, as `oms serve` and `oms worker` do.
    env = {key: value for key, value in os.environ.items() if key != "OMS_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-c", LOGGING_SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    printed = run.stdout + run.stderr
    for secret in (
        "EAAAl-known-pos-token",
        "abcdef123",
        "6100zz",
        "plain-text-secret",
        "6100traceback",
        "hunter2-broker",
    ):
        assert secret not in printed
    assert "page=2" in printed and "session=***" in printed and "'appSecret': '***'" in printed
    assert "unmasked=1" not in printed
    assert printed.count("RuntimeError: Taobao answered 403") == 2
