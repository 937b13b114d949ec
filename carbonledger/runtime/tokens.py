"""Bearer tokens (JWT): validating them against the configured issuer, and minting
development ones with a local key (docs/access.md).

A token is accepted when its signature verifies with the issuer's key (a JWKS URL
or a public key file; in development without an issuer, the local development
key), and its issuer, audience and expiry hold. Its claims name the role and the
scope (`contracts/roles.py`):

    {"iss": ..., "aud": ..., "exp": ..., "iat": ..., "sub": "<the IdP's user>",
     "role": "person", "subject": "<64 hex>"}          # or "partner": "navi-maps",
                                                        # or "region": "440300"

`sub` is the identity provider's own user id; the ledger reads the scope from
`subject` / `partner` / `region` (a super-app maps its user to the platform's
subject id when it issues the token).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from carbonledger.contracts.roles import Principal, Role, scope_problem
from carbonledger.contracts.settings import ROOT

DEVELOPMENT_ISSUER = "carbonledger-development"
AUDIENCE = "carbonledger"
# The algorithms a token may name, by the type of the key that checks it: a token
# whose header names another one is refused before PyJWT tries it on the wrong key
# (which raises TypeError / ValueError rather than a PyJWTError).
EC_ALGORITHMS = ("ES256",)
RSA_ALGORITHMS = ("RS256", "PS256")
EDDSA_ALGORITHMS = ("EdDSA",)
DEFAULT_TTL_SECONDS = 8 * 3600


class TokenSettings(BaseSettings):
    """Who the platform trusts to issue bearer tokens (CARBON_TOKEN_*). In production
    an issuer and its key (a JWKS URL or a public key file) are required: the
    process refuses to start without them, and the development key is never used."""

    model_config = SettingsConfigDict(env_prefix="CARBON_", env_ignore_empty=True, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    run_dir: Path = ROOT / ".run"
    token_issuer: str | None = None
    token_audience: str = AUDIENCE
    token_jwks_url: str | None = None
    token_public_key_file: Path | None = None
    # Clock skew allowed between the issuer and this host, on exp / iat / nbf.
    token_leeway_seconds: int = 30

    @model_validator(mode="after")
    def _refuse_production_without_issuer(self) -> TokenSettings:
        if self.environment != "production":
            return self
        if not self.token_issuer:
            raise ValueError("CARBON_TOKEN_ISSUER is required in production")
        if not (self.token_jwks_url or self.token_public_key_file):
            raise ValueError(
                "CARBON_TOKEN_JWKS_URL or CARBON_TOKEN_PUBLIC_KEY_FILE is required in production"
            )
        return self

    @property
    def development_key_file(self) -> Path:
        return self.run_dir / "tokens" / "development-key.pem"

    @property
    def trusts_development_key(self) -> bool:
        return self.environment != "production" and not self.token_issuer

    @property
    def issuer(self) -> str:
        return self.token_issuer or DEVELOPMENT_ISSUER


class InvalidToken(Exception):
    """No token, or one this platform does not accept (the reason goes in the
    `WWW-Authenticate` header's error_description, never which account it named)."""


def development_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The local development signing key (P-256), made once: the first process to
    need it writes it, every other reads that one (a link is atomic, so two
    processes starting together agree on one key)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = ec.generate_private_key(ec.SECP256R1())
        pem = made.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        draft.write_bytes(pem)
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            draft.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


@dataclass(frozen=True)
class Grant:
    """What a development token says: a role and its scope, for `ttl` seconds."""

    role: Role
    subject: str | None = None
    partner: str | None = None
    region: str | None = None
    ttl_seconds: int = DEFAULT_TTL_SECONDS

    def claims(self, issuer: str, audience: str, now: int) -> dict[str, Any]:
        scope = {"subject": self.subject, "partner": self.partner, "region": self.region}
        return {
            "iss": issuer,
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "sub": self.subject or self.partner or self.region or self.role.value,
            "role": self.role.value,
            **{k: v for k, v in scope.items() if v is not None},
        }


def mint_development_token(settings: TokenSettings, grant: Grant, now: int | None = None) -> str:
    """A bearer token signed with the local development key. Refused in production,
    and where another issuer is configured (the platform would not accept it)."""
    if settings.environment == "production":
        raise PermissionError("development tokens are refused when CARBON_ENVIRONMENT=production")
    if not settings.trusts_development_key:
        raise PermissionError(
            f"CARBON_TOKEN_ISSUER is {settings.token_issuer}: ask that issuer for a token"
        )
    problem = scope_problem(grant.role, grant.subject, grant.partner, grant.region)
    if problem:
        raise ValueError(problem)
    key = development_key(settings.development_key_file)
    claims = grant.claims(settings.issuer, settings.token_audience, now or int(time.time()))
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "development"})


class TokenVerifier:
    """Checks bearer tokens against the configured issuer and reads their principal."""

    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.token_jwks_url) if settings.token_jwks_url else None
        self._key: Any = None
        if settings.token_public_key_file is not None:
            self._key = serialization.load_pem_public_key(
                settings.token_public_key_file.read_bytes()
            )
        elif self._jwks is None and settings.trusts_development_key:
            self._key = development_key(settings.development_key_file).public_key()

    def principal(self, token: str) -> Principal:
        """The principal of a valid token; `InvalidToken` saying why otherwise."""
        key, algorithms = self._signing_key(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=self.settings.token_audience,
                issuer=self.settings.issuer,
                leeway=self.settings.token_leeway_seconds,
                options={"require": ["exp", "iss", "aud", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except (jwt.PyJWTError, TypeError, ValueError) as bad:
            # TypeError / ValueError: a header or key PyJWT cannot pair (a bad
            # token all the same, never a server error).
            raise InvalidToken(f"the token is not valid here ({type(bad).__name__})") from None
        return _principal(claims)

    def _signing_key(self, token: str) -> tuple[Any, tuple[str, ...]]:
        """The key that checks this token and the algorithms it may be signed with."""
        if self._jwks is not None:
            try:
                found = self._jwks.get_signing_key_from_jwt(token)
            except (jwt.PyJWTError, TypeError, ValueError) as bad:
                raise InvalidToken(
                    f"no key of the issuer signs it ({type(bad).__name__})"
                ) from None
            # The JWK's own algorithm (its `alg`, else PyJWT's default for its kty),
            # and only if this platform takes it for that type of key.
            named = found.algorithm_name
            return found.key, (named,) if named in algorithms_for(found.key) else ()
        if self._key is None:
            raise InvalidToken("no token issuer is configured")
        return self._key, algorithms_for(self._key)


def algorithms_for(key: Any) -> tuple[str, ...]:
    """The signature algorithms a public key can check (none for a key of a type
    this platform does not take: every token is then refused)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return EC_ALGORITHMS
    if isinstance(key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS
    if isinstance(key, ed25519.Ed25519PublicKey):
        return EDDSA_ALGORITHMS
    return ()


def _principal(claims: dict[str, Any]) -> Principal:
    try:
        role = Role(claims["role"])
    except ValueError:
        raise InvalidToken("the token names no role of this platform") from None
    scope = {k: _text(claims.get(k)) for k in ("subject", "partner", "region")}
    problem = scope_problem(role, **scope)
    if problem:
        raise InvalidToken(problem)
    return Principal(role=role, token_id=_text(claims.get("jti")), **scope)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
