"""Who a presented token stands for: an API token of ours, or a JWT from a front-end's identity provider.

No token at all is not this module's business (the caller is anonymous). A token that
is presented but does not hold (unknown, revoked, expired, a JWT with a bad signature,
issuer, audience or expiry) raises :class:`AuthenticationFailed`, whose message says
which, so the API can answer UNAUTHENTICATED instead of treating the caller as anonymous.

JWTs are verified with PyJWT against one configured key (``OMS_JWT_KEY``: an HS256
secret, or a PEM public key for RS256/ES256) or a JWKS file (``OMS_JWT_JWKS_FILE``,
key chosen by ``kid``). The algorithm comes from the key, never from the token's
header, so an RS256 public key can never be used as an HS256 secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import select, update

from oms_graphql.config import Settings
from oms_graphql.db.engine import Database
from oms_graphql.db.models import ApiToken, Customer, CustomerIdentity
from oms_graphql.domain.access import Role, hash_token
from oms_graphql.domain.customers import normalise_email, normalise_phone


@dataclass(frozen=True)
class Identity:
    """An authenticated caller."""

    role: Role
    name: str
    customer_id: int | None = None
    token_id: int | None = None  # the API token's row; None for a JWT
    expires_at: datetime | None = None


class AuthenticationFailed(Exception):
    """A token was presented and does not hold; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# Authenticated tokens, by hash, for a short while: a front-end sends the same token
# with every request. A revoked token is dropped from this process's cache at once and
# stops working on other servers within _CACHE_SECONDS.
_CACHE: dict[str, tuple[float, Identity]] = {}
_CACHE_SECONDS = 30.0
_CACHE_MAX = 10_000
# last_used_at is written at most this often per token.
_LAST_USED_GRANULARITY = timedelta(seconds=60)


def forget_token(token_hash: str) -> None:
    for key in [key for key in _CACHE if key.endswith(token_hash)]:
        _CACHE.pop(key, None)


def _remember(cache_key: str, identity: Identity) -> Identity:
    until = time.monotonic() + _CACHE_SECONDS
    if identity.expires_at is not None:
        until = min(until, time.monotonic() + (identity.expires_at - datetime.now(UTC)).total_seconds())
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[cache_key] = (until, identity)
    return identity


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("oms_")


async def authenticate(database: Database, token: str, settings: Settings) -> Identity:
    """The identity ``token`` stands for; raises AuthenticationFailed when it does not hold."""
    digest = hash_token(token)
    jwt_token = looks_like_jwt(token)
    # What a JWT stands for depends on the settings it was verified with (one set per app).
    cache_key = f"{id(settings)}:{digest}" if jwt_token else digest
    cached = _CACHE.get(cache_key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    if jwt_token:
        identity = await _jwt_identity(database, token, settings)
    else:
        identity = await _api_token_identity(database, token, digest)
    # Made-up tokens are never cached (they raise above): a stream of them cannot fill the cache.
    return _remember(cache_key, identity)


async def _api_token_identity(database: Database, token: str, digest: str) -> Identity:
    async with database.session() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    now = datetime.now(UTC)
    if row is None:
        raise AuthenticationFailed(
            "The token is not a valid API token (unknown or mistyped). "
            "Send a token made by apiTokenCreate or `oms token create`."
        )
    if row.revoked_at is not None:
        raise AuthenticationFailed(
            f"The API token {row.name!r} was revoked at {row.revoked_at.isoformat()}. Ask an admin for a new one."
        )
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthenticationFailed(
            f"The API token {row.name!r} expired at {row.expires_at.isoformat()}. Ask an admin for a new one."
        )
    try:
        role = Role(row.role)
    except ValueError:
        raise AuthenticationFailed(
            f"The API token {row.name!r} has role {row.role!r}, which this version does not know."
        ) from None
    if row.last_used_at is None or now - row.last_used_at >= _LAST_USED_GRANULARITY:
        async with database.session() as session, session.begin():
            await session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return Identity(role=role, name=row.name, customer_id=row.customer_id, token_id=row.id, expires_at=row.expires_at)


# --- JWTs -------------------------------------------------------------------------

_ALGORITHM_OF_KTY = {"oct": "HS256", "RSA": "RS256", "EC": "ES256"}
_JWKS_CACHE: dict[str, tuple[float, jwt.PyJWKSet]] = {}


def _configured_key(settings: Settings) -> tuple[Any, str]:
    """The key of OMS_JWT_KEY and the one algorithm it verifies."""
    text = settings.jwt_key or ""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as file:
            text = file.read()
    if "-----BEGIN" not in text:
        return text.encode(), "HS256"
    key = load_pem_public_key(text.encode())
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, "ES256"
    raise AuthenticationFailed("OMS_JWT_KEY is a public key of a kind JWTs here cannot use (RSA or EC P-256).")


def _jwks(path: str) -> jwt.PyJWKSet:
    # Read again when the file changes, so an identity provider's new keys are picked up without a restart.
    modified = os.stat(path).st_mtime
    cached = _JWKS_CACHE.get(path)
    if cached and cached[0] == modified:
        return cached[1]
    with open(path, encoding="utf-8") as file:
        keys = jwt.PyJWKSet.from_dict(json.load(file))
    _JWKS_CACHE[path] = (modified, keys)
    return keys


def _key_for(token: str, settings: Settings) -> tuple[Any, str]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise AuthenticationFailed("The token is not a well-formed JWT.") from None
    if not settings.jwt_jwks_file:
        return _configured_key(settings)
    kid = header.get("kid")
    try:
        keys = _jwks(settings.jwt_jwks_file)
    except (OSError, ValueError, jwt.PyJWTError) as error:
        raise AuthenticationFailed(f"The JWKS file OMS_JWT_JWKS_FILE cannot be read ({error}).") from None
    for key in keys.keys:
        algorithm = key.algorithm_name or _ALGORITHM_OF_KTY.get(key.key_type or "", "")
        # Without a kid, the first key of the token's algorithm is tried (a one-key JWKS is common).
        if key.key_id == kid if kid is not None else algorithm == header.get("alg"):
            return key.key, algorithm
    if kid is None:
        raise AuthenticationFailed("The JWT names no key id (kid), and no key of its algorithm is in the JWKS file.")
    raise AuthenticationFailed(f"The JWT's key id {kid!r} is not in the JWKS file.")


def _verified_claims(token: str, settings: Settings) -> dict[str, Any]:
    if not settings.jwt_configured:
        raise AuthenticationFailed(
            "This server accepts no JWTs (OMS_JWT_KEY or OMS_JWT_JWKS_FILE is not set). Send an API token."
        )
    if not (settings.jwt_issuer and settings.jwt_audience):
        raise AuthenticationFailed(
            "This server's JWT settings are incomplete: OMS_JWT_ISSUER and OMS_JWT_AUDIENCE must both be set."
        )
    key, algorithm = _key_for(token, settings)
    if algorithm not in ("HS256", "RS256", "ES256"):
        raise AuthenticationFailed(f"JWTs signed with {algorithm or 'an unknown algorithm'} are not accepted.")
    try:
        header_alg = jwt.get_unverified_header(token).get("alg")
        if header_alg != algorithm:
            raise AuthenticationFailed(f"The JWT is signed with {header_alg}; its key verifies {algorithm} only.")
        return dict(
            jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed("The JWT has expired (its exp is past). Sign in again for a new one.") from None
    except jwt.ImmatureSignatureError:
        raise AuthenticationFailed("The JWT is not valid yet (its nbf or iat is in the future).") from None
    except jwt.InvalidAudienceError:
        raise AuthenticationFailed(f"The JWT's audience (aud) is not {settings.jwt_audience!r}.") from None
    except jwt.InvalidIssuerError:
        raise AuthenticationFailed(f"The JWT's issuer (iss) is not {settings.jwt_issuer!r}.") from None
    except jwt.InvalidSignatureError:
        raise AuthenticationFailed("The JWT's signature does not verify with the configured key.") from None
    except jwt.MissingRequiredClaimError as error:
        raise AuthenticationFailed(f"The JWT has no {error.claim!r} claim, which is required.") from None
    except jwt.PyJWTError as error:
        raise AuthenticationFailed(f"The JWT is not valid: {error}.") from None


def _role_of(claims: dict[str, Any], settings: Settings) -> Role:
    given = claims.get(settings.jwt_role_claim)
    default = settings.jwt_default_role
    if given is None and default and default.upper() != "NONE":
        given = default
    if not isinstance(given, str) or given.upper() not in Role.__members__:
        raise AuthenticationFailed(
            f"The JWT's {settings.jwt_role_claim!r} claim must name a role ({', '.join(Role.__members__)})."
        )
    role = Role(given.upper())
    if role.value not in {allowed.upper() for allowed in settings.jwt_allowed_roles}:
        raise AuthenticationFailed(
            f"JWTs may not carry the role {role.value} here (OMS_JWT_ALLOWED_ROLES); use an API token for it."
        )
    return role


def _customer_key(value: Any) -> int | None:
    """A customer id claim: our Customer's global id (as the API shows it), or its number."""
    if isinstance(value, int) and not isinstance(value, bool):
        key = value
    elif isinstance(value, str) and value.isdigit():
        key = int(value)
    elif isinstance(value, str):
        try:
            decoded = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        type_name, _, number = decoded.partition(":")
        if type_name != "Customer" or not number.isdigit():
            return None
        key = int(number)
    else:
        return None
    return key if 0 < key < 2**63 else None


def _normalised(kind: str, value: str) -> str | None:
    if kind == "email":
        return normalise_email(value)
    if kind == "phone":
        return normalise_phone(value)
    return value


async def _customer_of(database: Database, claims: dict[str, Any], settings: Settings) -> int:
    async with database.session() as session:
        if settings.jwt_customer_claim in claims:
            key = _customer_key(claims[settings.jwt_customer_claim])
            if key is not None and await session.get(Customer, key) is not None:
                return key
            raise AuthenticationFailed(
                f"The JWT's {settings.jwt_customer_claim!r} claim names no customer of this shop."
            )
        if settings.jwt_identity_kind:
            value = claims.get(settings.jwt_identity_claim)
            kind = settings.jwt_identity_kind
            if isinstance(value, str) and value:
                found = await session.scalar(
                    select(CustomerIdentity.customer_id).where(
                        CustomerIdentity.kind == kind,
                        CustomerIdentity.value == _normalised(kind, value),
                    )
                )
                if found is not None:
                    return int(found)
            raise AuthenticationFailed(
                f"The JWT's {settings.jwt_identity_claim!r} claim matches no customer's {kind} identity."
            )
    raise AuthenticationFailed(
        f"A CUSTOMER JWT needs the {settings.jwt_customer_claim!r} claim (the customer's id) to say whose it is."
    )


async def _jwt_identity(database: Database, token: str, settings: Settings) -> Identity:
    claims = _verified_claims(token, settings)
    role = _role_of(claims, settings)
    customer_id = await _customer_of(database, claims, settings) if role == Role.CUSTOMER else None
    try:
        expires_at: datetime | None = datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (OverflowError, OSError, ValueError):
        expires_at = None  # an exp past year 9999: the cache's own limit applies
    return Identity(role=role, name=str(claims["sub"]), customer_id=customer_id, expires_at=expires_at)
