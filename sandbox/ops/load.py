"""Client traffic: orders sent through the API at a steady rate, every answer kept in a ledger.

The ledger is what lets a test (and later a drill) count: each order id, the status the API gave,
and when. Both loops are bounded, by count and by time. The same client sends to the local gateway
or, given an `Api`, to a deployed stack's CloudFront URL.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox.platform.hints import command as hint
from sandbox.platform.state import StackState

# httpx and the user pool (PyJWT) are imported where used, not here: the CLI reads this module's
# defaults to build its options, and `sandbox --help` must not load them (the CLI's start time).

#: Customers valid at the API that the database is never seeded with (it has 1-1000) and that
#: nothing adds but the fix: each poison order names a new one from here, so it cannot commit
#: until `sandbox customer add` adds *its* customer, however many were fixed before it.
POISON_CUSTOMERS = range(900_000_000, 1_000_000_000)


def poison_customer() -> int:
    """A customer no one has added, drawn at random from `POISON_CUSTOMERS` (one in a hundred
    million: a repeat is unlikely in any number of workshops). ``secrets``, not ``random``: a
    test's seeded ``random`` would draw the same customer, already fixed, every time."""
    return POISON_CUSTOMERS.start + secrets.randbelow(len(POISON_CUSTOMERS))


@dataclass
class Sent:
    order_id: str
    status: int  # 0: no answer (connection failed or timed out)
    sent_at: float
    answered_at: float
    error: str = ""
    attempts: int = 1  # more than one: the client retried (`ClientPolicy.retries`)
    message_id: str = ""  # a 202's: the SQS message the order is in, before any database saw it

    @property
    def accepted(self) -> bool:
        """Acknowledged: queued (202), committed (201), or already committed (200, a retry)."""
        return self.status in (200, 201, 202)

    def unanswered(self, api_url: str) -> str:
        """The sentence for an order the API never answered (status 0; ``error``: httpx's
        exception name), the same in the CLI and on the dashboard. A connection that failed
        sent nothing; any later failure may have queued the order, and sending it again under
        its id is safe (the id is its idempotency key)."""
        where = f"the API at {api_url}"
        if self.error.startswith("Connect"):
            said = "refused the connection" if self.error == "ConnectError" else "did not connect"
            return (
                f"{where} {said}: the order was not sent. `{hint('status')}` says what is down; "
                "`make up` repairs it"
            )
        return (
            f"{where} did not answer ({self.error}): order {self.order_id} may or may not be "
            "queued; the same order sent again under that --order-id is safe (an id commits once)"
        )


def order(
    order_id: str, customer_id: int | None = None, amount: str = "19.99", note: str = ""
) -> dict[str, Any]:
    customer = customer_id or zlib.crc32(order_id.encode()) % 1000 + 1  # a seeded customer
    return {
        "order_id": order_id,
        "customer_id": customer,
        "amount": str(Decimal(amount)),
        "currency": "USD",
        "note": note,
    }


@dataclass(frozen=True)
class Api:
    """Where orders go and the ``Authorization`` header that lets them in.

    The two gateways want different tokens: the local one an access token as ``Bearer <token>``,
    API Gateway's Cognito user-pool authorizer the bare ID token. Whoever signs in knows which;
    the client only sends what it is given.
    """

    base_url: str
    authorization: str

    @classmethod
    def local(cls, state: StackState) -> Api:
        """The local gateway, with a fresh token from the sandbox's user pool."""
        from sandbox.standins import cognito

        return cls(state.api_url, f"Bearer {cognito.issue_token(state)}")


@dataclass(frozen=True)
class ClientPolicy:
    """How a client waits and retries: what decides what a direct write path loses.

    The guidance's own demo client waits 5 s and never retries (every failure is an HTTP 500 to
    its user). A retrying client sends the same body again after ``backoff`` seconds, doubling,
    when it got no answer, a 5xx or a 429 (a throttle; any other 4xx is final): fewer errors, a
    longer wait, and a second row if the write behind the API is not idempotent. ``in_flight``:
    how many of its requests may wait for an answer at once (its users); the next waits for one
    of them to be answered.
    """

    timeout: float = 30.0
    retries: int = 0
    backoff: float = 0.5
    in_flight: int = 32

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.in_flight < 1:
            raise ValueError("client timeout must be > 0, retries and backoff >= 0, in flight >= 1")


#: 30 s, no retry, 32 at once: every drill and load until told otherwise.
PATIENT = ClientPolicy()


class Client:
    """An authenticated API client (signs in once, like a Cognito app client)."""

    def __init__(
        self, target: StackState | Api, policy: ClientPolicy = PATIENT, connections: int = 64
    ) -> None:
        import httpx

        api = target if isinstance(target, Api) else Api.local(target)
        self.policy = policy
        self.http = httpx.Client(
            base_url=api.base_url,
            headers={"Authorization": api.authorization},
            timeout=policy.timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=64),
        )

    def post(self, body: dict[str, Any], path: str = "/orders", due: float | None = None) -> Sent:
        """One order, retried as the policy says; the answer is the last attempt's, timed from
        the first, or from ``due`` (epoch seconds) if it went out late: the wait the client's
        user saw."""
        sent_at = min(due, time.time()) if due is not None else time.time()
        for attempt in range(1, self.policy.retries + 2):
            status, said = self._once(body, path)
            final = status and status < 500 and status != 429  # a throttle is retried
            if final or attempt > self.policy.retries:  # final, or the last
                break
            time.sleep(self.policy.backoff * 2 ** (attempt - 1))
        error, message_id = ("", said) if status == 202 else (said, "")
        return Sent(body["order_id"], status, sent_at, time.time(), error, attempt, message_id)

    def _once(self, body: dict[str, Any], path: str) -> tuple[int, str]:
        """The status and what goes with it: a 202's message id, another success's nothing, a
        refusal's text, no answer's exception name."""
        import httpx

        try:
            reply = self.http.post(path, json=body)
        except httpx.HTTPError as error:
            return 0, type(error).__name__
        if reply.status_code == 202:
            try:
                return 202, str(reply.json().get("message_id", ""))
            except (ValueError, AttributeError):  # not the API's JSON object: no id to keep
                return 202, ""
        return reply.status_code, "" if reply.is_success else reply.text[:200]

    def close(self) -> None:
        self.http.close()


def send_orders(
    target: StackState | Api,
    count: int,
    rate: float,
    *,
    prefix: str | None = None,
    path: str = "/orders",
    concurrency: int | None = None,
    max_seconds: float | None = None,
    progress: Callable[[Sent], None] | None = None,
    cancel: threading.Event | None = None,
    hold: tuple[int, threading.Event] | None = None,
    policy: ClientPolicy = PATIENT,
) -> list[Sent]:
    """Send ``count`` orders at ``rate`` per second; stop early after ``max_seconds`` or ``cancel``.

    Each order goes when it is due while fewer than ``concurrency`` (the policy's ``in_flight``)
    wait for an answer; one that has to wait for a free slot goes late and is timed from when
    it was due (the wait its user saw).
    ``target`` is the local stack (signs in to its pool) or an `Api` someone already signed in to.
    ``hold`` (index, event): order ``index`` and the rest wait for the event, then go on at
    ``rate`` (a drill's fault must have begun before the rest of its traffic is sent); the wait
    is not bounded by ``max_seconds``, only by ``cancel``: the caller must set one of the two.
    ``policy``: each request's timeout and retries.
    """
    if count < 0 or rate <= 0:
        raise ValueError("count must be >= 0 and rate > 0")
    prefix = prefix or uuid.uuid4().hex[:8]
    limit = max_seconds if max_seconds is not None else count / rate * 2 + 60
    concurrency = concurrency or policy.in_flight
    client = Client(target, policy, connections=concurrency)
    ledger: list[Sent] = []
    lock = threading.Lock()
    started = time.monotonic()

    def one(index: int, due: float) -> None:
        result = client.post(order(f"{prefix}-{index:06d}"), path, due)
        with lock:
            ledger.append(result)
        if progress:
            progress(result)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for index in range(count):
                if hold is not None and index == hold[0]:
                    paused = time.monotonic()
                    while not hold[1].wait(0.25):
                        if cancel is not None and cancel.is_set():
                            return ledger
                    started += time.monotonic() - paused  # the pace resumes, no burst
                due = started + index / rate
                if due - started > limit:
                    break
                if cancel is not None:
                    if cancel.wait(max(0.0, due - time.monotonic())):
                        break
                else:
                    time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(one, index, time.time() + due - time.monotonic())
    finally:
        client.close()
    return ledger
