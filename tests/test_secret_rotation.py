"""Secrets at rest: channel and carrier credentials are encrypted with OMS_SECRET_KEY, previous keys
still decrypt, and `oms secrets rotate` re-encrypts everything with the new key. And the production
switches (OMS_PRODUCTION=1): no introspection, no GraphiQL, no anonymous role.

Each test has a database of its own and real `oms` processes, since the key is process-wide.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from oms_graphql.domain.plugin_settings import secret_keyring
from tests.fakes.server import free_port
from tests.support import run_async, wait_until_ready
from tests.test_cli import _environment, oms

OLD_KEY, NEW_KEY, LOST_KEY = "old-key-of-2025", "new-key-of-2026", "a-key-nobody-kept"
CARRIER_CREATE = """mutation($input: CarrierCreateInput!) {
  carrierCreate(input: $input) { carrier { code secretSettingsSet } userErrors { field message } } }"""
CARRIERS = "{ carriers { code secretSettingsSet } }"


@contextmanager
def oms_serve(database_url: str, cwd: Path, **env: str) -> Iterator[str]:
    """`oms serve` in its own process with ``env``; yields its base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "oms_graphql.cli", "serve", "--port", str(port)],
        cwd=cwd,
        env=_environment(database_url, **env),
    )
    try:
        wait_until_ready(process, base_url)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


def graphql(base_url: str, token: str | None, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{base_url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers, timeout=30
    ).json()


def stored_secrets(database_url: str) -> dict[str, str]:
    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Carrier

    async def load() -> dict[str, str]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                rows = (await session.execute(select(Carrier.code, Carrier.secrets_encrypted))).all()
                return {code: secrets for code, secrets in rows if secrets}
        finally:
            await database.dispose()

    return run_async(load())


def add_carrier(base_url: str, token: str, code: str, api_key: str) -> None:
    settings = {"apiKey": api_key, "webhookSecret": f"whsec-{code}", "services": ["USPS:Priority"]}
    body = graphql(
        base_url,
        token,
        CARRIER_CREATE,
        {"input": {"code": code, "name": code, "kind": "easypost", "settings": settings}},
    )
    assert body["data"]["carrierCreate"]["userErrors"] == [], body


@pytest.fixture
def migrated(scratch_database_url: str, tmp_path: Path) -> str:
    assert oms("migrate", database_url=scratch_database_url, cwd=tmp_path).returncode == 0
    return scratch_database_url


def admin_token(database_url: str, cwd: Path) -> str:
    made = oms("token", "create", "--role", "ADMIN", "--name", "ops", database_url=database_url, cwd=cwd)
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[-1]


def test_rotation_reencrypts_every_secret_with_the_new_key_and_old_keys_still_read_meanwhile(migrated, tmp_path):
    token = admin_token(migrated, tmp_path)
    with oms_serve(migrated, tmp_path, OMS_SECRET_KEY=OLD_KEY) as base_url:
        for n in range(3):
            add_carrier(base_url, token, f"ep-{n}", f"EZAK-live-{n}")
    before = stored_secrets(migrated)
    assert set(before) == {"ep-0", "ep-1", "ep-2"}
    assert all("EZAK" not in value for value in before.values())  # encrypted at rest

    # Step 1: the new key in OMS_SECRET_KEY, the old one kept for reading. Nothing is lost meanwhile.
    keys = {"OMS_SECRET_KEY": NEW_KEY, "OMS_PREVIOUS_SECRET_KEYS": OLD_KEY}
    with oms_serve(migrated, tmp_path, **keys) as base_url:
        carriers = graphql(base_url, token, CARRIERS)["data"]["carriers"]
        assert {c["code"]: c["secretSettingsSet"] for c in carriers}["ep-1"] == ["apiKey", "webhookSecret"]

    # Step 2: rotate.
    rotated = oms("secrets", "rotate", database_url=migrated, cwd=tmp_path, **keys)
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted the secrets of 3 of 3 channels and carriers." in rotated.stdout
    assert "Re-encrypting secrets" in rotated.stderr  # the progress display
    after = stored_secrets(migrated)
    for code, value in after.items():
        assert value != before[code]
        decrypted = secret_keyring(NEW_KEY).decrypt(value.encode()).decode()
        assert f"EZAK-live-{code[-1]}" in decrypted
        with pytest.raises(InvalidToken):
            secret_keyring(OLD_KEY).decrypt(value.encode())

    # Step 3: the old key can go; everything reads with the new one alone, and rotating again is harmless.
    with oms_serve(migrated, tmp_path, OMS_SECRET_KEY=NEW_KEY) as base_url:
        carriers = graphql(base_url, token, CARRIERS)["data"]["carriers"]
        assert all(c["secretSettingsSet"] == ["apiKey", "webhookSecret"] for c in carriers)
    again = oms("secrets", "rotate", database_url=migrated, cwd=tmp_path, OMS_SECRET_KEY=NEW_KEY)
    assert again.returncode == 0 and "3 of 3" in again.stdout


def test_rotation_names_the_accounts_no_key_can_read_and_leaves_them_as_they_were(migrated, tmp_path):
    token = admin_token(migrated, tmp_path)
    with oms_serve(migrated, tmp_path, OMS_SECRET_KEY=LOST_KEY) as base_url:
        add_carrier(base_url, token, "ep-lost", "EZAK-lost")
    with oms_serve(migrated, tmp_path, OMS_SECRET_KEY=OLD_KEY) as base_url:
        add_carrier(base_url, token, "ep-kept", "EZAK-kept")
    before = stored_secrets(migrated)

    result = oms(
        "secrets",
        "rotate",
        database_url=migrated,
        cwd=tmp_path,
        OMS_SECRET_KEY=NEW_KEY,
        OMS_PREVIOUS_SECRET_KEYS=OLD_KEY,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "1 of 2" in result.stdout
    assert "carrier ep-lost" in result.stderr and "OMS_PREVIOUS_SECRET_KEYS" in result.stderr
    after = stored_secrets(migrated)
    assert after["ep-lost"] == before["ep-lost"] and after["ep-kept"] != before["ep-kept"]


def test_rotation_refuses_the_development_key(migrated, tmp_path):
    result = oms("secrets", "rotate", database_url=migrated, cwd=tmp_path, OMS_SECRET_KEY="")
    assert result.returncode == 2 and "development default" in result.stderr and "Nothing was changed" in result.stderr


# --- production switches ------------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } } }"


def test_production_turns_off_introspection_graphiql_and_the_anonymous_role(migrated, tmp_path):
    token = admin_token(migrated, tmp_path)
    with oms_serve(migrated, tmp_path, OMS_ANONYMOUS_ROLE="ADMIN") as base_url:  # as `make run` serves a laptop
        assert graphql(base_url, None, INTROSPECTION)["data"]["__schema"]["queryType"]["name"] == "Query"
        assert "graphiql" in httpx.get(f"{base_url}/graphql", headers={"accept": "text/html"}).text.lower()

    production = {"OMS_PRODUCTION": "1", "OMS_SECRET_KEY": NEW_KEY}
    with oms_serve(migrated, tmp_path, **production) as base_url:
        hidden = graphql(base_url, token, INTROSPECTION)
        assert hidden["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        page = httpx.get(f"{base_url}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404 and "graphiql" not in page.text.lower()
        anonymous = graphql(base_url, None, "{ me { role } }")
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert graphql(base_url, token, "{ me { role } }")["data"]["me"]["role"] == "ADMIN"

    refused = oms("serve", database_url=migrated, cwd=tmp_path, OMS_ANONYMOUS_ROLE="ADMIN", **production)
    assert refused.returncode == 2 and "OMS_ANONYMOUS_ROLE" in refused.stderr
    refused = oms("serve", database_url=migrated, cwd=tmp_path, OMS_PRODUCTION="1", OMS_SECRET_KEY="")
    assert refused.returncode == 2 and "OMS_SECRET_KEY" in refused.stderr
