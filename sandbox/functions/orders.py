"""What an order is, checked once at the API so the queue only ever carries orders the database
can store.

Every bound below is the database's or the queue's own, so an order the API answers 202 can
always commit, unless it is the deliberate poison (an unknown customer) or reuses an order id
with a different body. `tests/integration/test_order_storage.py` checks these bounds against
the live schema's column types, so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

# SQS refuses messages over 256 KiB: checked before anything is parsed.
MAX_MESSAGE_BYTES = 256 * 1024
BIGINT_MAX = 2**63 - 1  # customers.customer_id and orders.customer_id are bigint
# Characters that cannot travel or be stored: PostgreSQL's text and jsonb cannot hold U+0000, and
# an SQS message may not carry U+FFFE or U+FFFF (JSON escapes every other control character).
STORABLE_TEXT = r"^[^\u0000\uFFFE\uFFFF]*$"
AMOUNT_TEXT = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"  # numeric(12, 2), never negative
CENT = Decimal("0.01")


def _exact_amount(value: Any) -> Any:
    """Money is exact: a whole number, or a decimal string; never a binary fraction, which
    rounds (0.57 arrives as 0.5699999999999999...) and so cannot promise the cents."""
    if isinstance(value, Decimal):  # already one: an order copied into a `QueuedOrder`
        return value
    if isinstance(value, str) and not re.fullmatch(AMOUNT_TEXT, value):
        raise ValueError('a string amount must look like "123" or "123.45" (at most 10 + 2 digits)')
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return Decimal(value)
    if isinstance(value, float) and value.is_integer():  # 3713.0: JSON's integer, written so
        return Decimal(int(value))
    if isinstance(value, float):
        raise ValueError('an amount with cents must be a string, like "9.50"')
    raise ValueError('an amount is a whole number or a string with cents, like "9.50"')


def _whole(value: Any) -> Any:
    """718867.0 is an integer to JSON Schema, so it is one here too; 718867.5 is not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Amount = Annotated[
    Decimal,
    BeforeValidator(_exact_amount),
    Field(ge=0, max_digits=12, decimal_places=2),
    AfterValidator(lambda value: value.quantize(CENT)),  # "9.5" and "9.50" are one amount
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": 9_999_999_999},
                {"type": "string", "pattern": AMOUNT_TEXT},
            ],
            "description": 'A whole number, or a string with cents ("9.50"): at most 10 digits '
            "and 2 decimal places, never negative.",
        }
    ),
]
OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
# Any note that passes fits one SQS message: JSON spends at most 6 bytes on a character (\u001f).
NOTE_MAX_CHARS = 40_000
Text = Annotated[str, StringConstraints(max_length=NOTE_MAX_CHARS, pattern=STORABLE_TEXT)]


class Order(BaseModel):
    """An order as a client submits it. ``order_id`` is the client's idempotency key."""

    model_config = ConfigDict(strict=True, extra="forbid")

    order_id: OrderId = Field(description="The client's idempotency key: one order, ever.")
    customer_id: Annotated[int, BeforeValidator(_whole)] = Field(
        gt=0, le=BIGINT_MAX, description="Customers 1-1000 exist."
    )
    amount: Amount
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    note: Text = Field(
        "", description="Any text but U+0000, U+FFFE and U+FFFF (the database or SQS refuse them)."
    )

    def fingerprint(self) -> str:
        """The order's content, hashed: a retry of the same order has the same fingerprint."""
        order = self.model_dump_json(include=set(Order.model_fields))  # never accepted_at
        return hashlib.sha256(order.encode()).hexdigest()

    def same_as(self, stored: dict[str, Any]) -> bool:
        """Whether a committed payload is this order: field by field, amounts as numbers, so an
        older or differently written form of the same order ("9.5", "9.50") still matches."""
        mine = self.model_dump(include=set(Order.model_fields))
        fields = Order.model_fields.items()
        theirs = {name: stored.get(name, field.default) for name, field in fields}
        with contextlib.suppress(ArithmeticError, TypeError, ValueError):
            theirs["amount"] = Decimal(str(theirs["amount"]))
        return mine == theirs


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
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "string_pattern_mismatch" and field == "note":
            reason = Order.model_fields["note"].description or reason
        raise InvalidOrder(field, reason) from None


def accepted(order: Order, epoch_ms: int) -> QueuedOrder:
    at = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return QueuedOrder(**order.model_dump(), accepted_at=at)


class InvalidOrder(ValueError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason
