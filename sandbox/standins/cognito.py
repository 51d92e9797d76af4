"""The Cognito stand-in: a local user pool that signs access tokens and publishes its JWKS.

Tokens look like Cognito access tokens (RS256, ``iss`` = the pool's URL, ``client_id``,
``token_use=access``), so the gateway checks exactly what API Gateway's Cognito authorizer checks.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.platform.state import StackState

KEY_ID = "sandbox-1"


def _key_file(state: StackState) -> Path:
    return state.path("identity", "signing-key.pem")


def create_pool(state: StackState) -> None:
    """Make the pool's signing key and app client id (at `make up`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    target = _key_file(state)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch(mode=0o600)
    target.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    state.client_id = uuid.uuid4().hex[:26]


def _private_key(state: StackState) -> Any:
    return _parse(_key_file(state).read_bytes())


@functools.lru_cache(maxsize=4)
def _parse(pem: bytes) -> Any:
    """Parse a key once per key: parsing checks the RSA key (about 46 ms here) where signing with
    it takes 0.3 ms, and the API fuzz signs a token per case. Keyed by the PEM's bytes, so a new
    pool (``create_pool``) is parsed afresh."""
    return serialization.load_pem_private_key(pem, password=None)


def jwks(state: StackState) -> dict[str, Any]:
    """The public keys, as served at ``<issuer>/.well-known/jwks.json``."""
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(_private_key(state).public_key()))
    return {"keys": [public | {"kid": KEY_ID, "use": "sig", "alg": "RS256"}]}


def issue_token(state: StackState, username: str = "workshop", expires_in: int = 3600) -> str:
    """Sign in ``username`` and return an access token (what `sandbox token` prints)."""
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, username)),
        "iss": state.issuer,
        "client_id": state.client_id,
        "token_use": "access",
        "scope": "orders/write",
        "username": username,
        "iat": now,
        "exp": now + expires_in,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _private_key(state), algorithm="RS256", headers={"kid": KEY_ID})


class Unauthorized(Exception):
    """The request carries no valid token; the message says why (sent back in the 401)."""


class Verifier:
    """Checks a bearer token as API Gateway's Cognito authorizer does."""

    def __init__(self, keys: dict[str, Any], issuer: str, client_id: str) -> None:
        self.keys = jwt.PyJWKSet.from_dict(keys)
        self.issuer = issuer
        self.client_id = client_id

    def verify(self, authorization: str | None) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing bearer token")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in self.keys.keys if k.key_id == kid), None)
            if key is None:
                raise Unauthorized("token signed by an unknown key")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss", "token_use"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.InvalidTokenError as error:
            raise Unauthorized(f"invalid token: {error}") from None
        # Access tokens carry client_id, ID tokens aud: either must name our app client.
        if claims.get("client_id", claims.get("aud")) != self.client_id:
            raise Unauthorized("token issued for another client")
        return claims
