"""Client traffic: orders sent through the API at a steady rate, every answer kept in a ledger.

The ledger is what lets a test (and later a drill) count: each order id, the status the API gave,
and when. Both loops are bounded, by count and by time.
"""

from __future__ import annotations

import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from sandbox import identity
from sandbox.state import StackState

POISON_CUSTOMER_ID = 999_999_999  # valid at the API, unknown to the database: can never commit


@dataclass
class Sent:
    order_id: str
    status: int  # 0: no answer (connection failed or timed out)
    sent_at: float
    answered_at: float
    error: str = ""

    @property
    def accepted(self) -> bool:
        return self.status in (201, 202)


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


class Client:
    """An authenticated API client (signs in once, like a Cognito app client)."""

    def __init__(self, state: StackState, timeout: float = 30.0) -> None:
        token = identity.issue_token(state)
        self.http = httpx.Client(
            base_url=state.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def post(self, body: dict[str, Any], path: str = "/orders") -> Sent:
        sent_at = time.time()
        try:
            reply = self.http.post(path, json=body)
            return Sent(
                body["order_id"],
                reply.status_code,
                sent_at,
                time.time(),
                "" if reply.is_success else reply.text[:200],
            )
        except httpx.HTTPError as error:
            return Sent(body["order_id"], 0, sent_at, time.time(), f"{type(error).__name__}")

    def close(self) -> None:
        self.http.close()


def send_orders(
    state: StackState,
    count: int,
    rate: float,
    *,
    prefix: str | None = None,
    path: str = "/orders",
    concurrency: int = 32,
    max_seconds: float | None = None,
    progress: Callable[[Sent], None] | None = None,
) -> list[Sent]:
    """Send ``count`` orders at ``rate`` per second; stop early after ``max_seconds``."""
    if count < 0 or rate <= 0:
        raise ValueError("count must be >= 0 and rate > 0")
    prefix = prefix or uuid.uuid4().hex[:8]
    limit = max_seconds if max_seconds is not None else count / rate * 2 + 60
    client = Client(state)
    ledger: list[Sent] = []
    lock = threading.Lock()
    started = time.monotonic()

    def one(index: int) -> None:
        result = client.post(order(f"{prefix}-{index:06d}"), path)
        with lock:
            ledger.append(result)
        if progress:
            progress(result)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for index in range(count):
                due = started + index / rate
                if due - started > limit:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(one, index)
    finally:
        client.close()
    return ledger
