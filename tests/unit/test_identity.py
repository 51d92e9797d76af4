"""The Cognito stand-in's tokens and the gateway's checks of them."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.platform.state import Node, StackState
from sandbox.standins import cognito


@pytest.fixture
def state(tmp_path):
    state = StackState(
        run_dir=str(tmp_path),
        service_user="",
        data_root=str(tmp_path),
        ports={"api": 9},
        nodes={"n1": Node("n1", 1, "writer", str(tmp_path))},
    )
    cognito.create_pool(state)
    return state


@pytest.fixture
def verifier(state):
    return cognito.Verifier(cognito.jwks(state), state.issuer, state.client_id)


def test_a_fresh_token_passes_and_carries_cognito_claims(state, verifier):
    claims = verifier.verify(f"Bearer {cognito.issue_token(state, username='ana')}")
    assert claims["username"] == "ana"
    assert claims["token_use"] == "access"
    assert claims["client_id"] == state.client_id
    assert claims["iss"] == state.issuer


def forged(state, **changes):
    now = int(time.time())
    claims = {
        "iss": state.issuer,
        "client_id": state.client_id,
        "token_use": "access",
        "iat": now,
        "exp": now + 60,
    } | changes
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, cognito._private_key(state), "RS256", headers={"kid": "sandbox-1"})


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic abc", "missing"),
        ("Bearer not-a-jwt", "invalid"),
    ],
)
def test_malformed_headers_are_refused(verifier, header, why):
    with pytest.raises(cognito.Unauthorized, match=why):
        verifier.verify(header)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"exp": int(time.time()) - 5}, "expired"),
        ({"iss": "http://elsewhere/pool"}, "issuer"),
        ({"client_id": "another-app"}, "another client"),
        ({"token_use": None}, "token_use"),
    ],
)
def test_tokens_with_wrong_claims_are_refused(state, verifier, changes, why):
    with pytest.raises(cognito.Unauthorized, match=why):
        verifier.verify(f"Bearer {forged(state, **changes)}")


def test_a_token_signed_by_another_key_is_refused(state, verifier):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        {"iss": state.issuer, "exp": int(time.time()) + 60},
        other,
        "RS256",
        headers={"kid": "sandbox-1"},
    )
    with pytest.raises(cognito.Unauthorized, match="invalid"):
        verifier.verify(f"Bearer {token}")


def test_the_signing_key_is_parsed_once_per_pool(state, monkeypatch):
    parse = cognito.serialization.load_pem_private_key
    parses = []
    monkeypatch.setattr(
        cognito.serialization,
        "load_pem_private_key",
        lambda *args, **kwargs: parses.append(1) or parse(*args, **kwargs),
    )
    cognito._parse.cache_clear()
    old = cognito.Verifier(cognito.jwks(state), state.issuer, state.client_id)
    tokens = [cognito.issue_token(state) for _ in range(3)]
    assert len(parses) == 1
    assert all(old.verify(f"Bearer {token}") for token in tokens)

    cognito.create_pool(state)  # a new key: parsed afresh, not the cached one
    token = cognito.issue_token(state)
    assert len(parses) == 2
    with pytest.raises(cognito.Unauthorized):
        old.verify(f"Bearer {token}")
