"""The gateway's authorizer without a stack: its cache of verified tokens (its HTTP connections:
test_gateway_protocol.py)."""

from __future__ import annotations

import time

import pytest

from sandbox.standins import cognito
from sandbox.standins.api_gateway.server import AUTH_CACHE_SECONDS, Authorizer


class Counting:
    """A verifier that counts its calls and accepts one token."""

    def __init__(self, expires: float) -> None:
        self.calls = 0
        self.expires = expires

    def verify(self, authorization: str | None) -> dict:
        self.calls += 1
        if authorization != "Bearer good":
            raise cognito.Unauthorized("invalid token")
        return {"sub": "u", "exp": self.expires}


def test_a_token_is_verified_once_a_refusal_every_time():
    verifier = Counting(expires=time.time() + 3600)
    authorizer = Authorizer(verifier)  # type: ignore[arg-type]
    for _ in range(3):
        assert authorizer.claims("Bearer good")["sub"] == "u"
        with pytest.raises(cognito.Unauthorized):
            authorizer.claims("Bearer bad")
    assert verifier.calls == 1 + 3


def test_a_cached_token_is_verified_again_once_it_expires(monkeypatch):
    now = time.time()
    verifier = Counting(expires=now + 60)  # before the cache's own time is up
    assert AUTH_CACHE_SECONDS > 60
    authorizer = Authorizer(verifier)  # type: ignore[arg-type]
    for later, calls in ((0, 1), (59, 1), (61, 2)):
        monkeypatch.setattr(time, "time", lambda later=later: now + later)
        authorizer.claims("Bearer good")
        assert verifier.calls == calls, later


def test_a_function_throttles_beyond_its_instances_and_is_not_waited_for_past_its_timeout(
    monkeypatch,
):
    """As Lambda behind API Gateway: an invocation beyond the instances is refused at once (no
    queue to grow while a dependency hangs), one that runs too long is answered 504 while its
    instance runs on, and counts as busy until it ends."""
    import asyncio
    import threading

    from sandbox.standins.api_gateway import server

    monkeypatch.setattr(server, "CONCURRENCY", 2)
    monkeypatch.setattr(server, "FUNCTION_TIMEOUT", 0.2)
    release = threading.Event()
    function = server.Function("producer", lambda event, context: release.wait(30) and "done")

    async def scenario() -> list[str]:
        said = []
        first = asyncio.ensure_future(function.invoke({}))
        second = asyncio.ensure_future(function.invoke({}))
        await asyncio.sleep(0)
        with pytest.raises(server.Throttled):
            await function.invoke({})
        for call in (first, second):
            with pytest.raises(TimeoutError):
                await call
        said.append(f"busy after the timeout: {function.running}")
        release.set()
        while function.running:  # the instances end their invocations
            await asyncio.sleep(0.01)
        said.append(await function.invoke({}))
        return said

    assert asyncio.run(scenario()) == ["busy after the timeout: 2", "done"]


def test_a_function_that_fails_after_its_timeout_has_its_error_logged(monkeypatch, caplog):
    """Its request was answered 504: nobody reads its result, so the gateway logs its error."""
    import asyncio
    import threading

    from sandbox.standins.api_gateway import server

    monkeypatch.setattr(server, "FUNCTION_TIMEOUT", 0.05)
    release = threading.Event()

    def handler(event, context):
        release.wait(30)
        raise RuntimeError("failed late")

    function = server.Function("producer", handler)

    async def scenario() -> None:
        with pytest.raises(TimeoutError):
            await function.invoke({})
        release.set()
        while function.running:  # the instance ends its invocation
            await asyncio.sleep(0.01)

    with caplog.at_level("ERROR", logger="gateway"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "function producer failed after its 0.05 s timeout: RuntimeError('failed late')"
    ]
