"""What an order is, checked once at the API so the queue only ever carries well-formed messages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

# SQS refuses messages over 256 KiB: checked before anything is parsed.
MAX_MESSAGE_BYTES = 256 * 1024

OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class Order(BaseModel):
    """An order as a client submits it. ``order_id`` is the client's idempotency key."""

    model_config = ConfigDict(strict=True, extra="forbid")

    order_id: OrderId
    customer_id: int = Field(gt=0)
    amount: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    note: Annotated[str, StringConstraints(max_length=200_000)] = ""


class QueuedOrder(Order):
    """An order as it travels through the queue: stamped with the time the API accepted it."""

    accepted_at: datetime


def parse_order(body: str | None) -> Order:
    """Parse and validate a request body; raises `InvalidOrder` naming the offending field."""
    try:
        return Order.model_validate_json(body or "")
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidOrder(field, first["msg"]) from None


def accepted(order: Order, epoch_ms: int) -> QueuedOrder:
    at = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return QueuedOrder(**order.model_dump(), accepted_at=at)


class InvalidOrder(ValueError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
