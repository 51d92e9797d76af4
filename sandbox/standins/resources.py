"""What the stack keeps in LocalStack, made whenever LocalStack starts empty.

LocalStack keeps nothing across a restart, so the DB secret, the queue and the DLQ (with every
acknowledged message restored from the SQS stand-in's journal, `sandbox.standins.sqs.restore`)
and the DLQ alarm are made at `up`, and again by whoever finds LocalStack back without them:
the control plane, or `make up`'s repair. Safe to run again: what exists is kept.
"""

from __future__ import annotations

from sandbox.platform.state import StackState
from sandbox.standins import cloudwatch, localstack
from sandbox.standins.secrets_manager import SECRET_NAME, ensure_secret
from sandbox.standins.sqs import restore


def missing(state: StackState) -> bool:
    """Whether LocalStack answers without the stack's queue restored in it."""
    return restore.needed(localstack.client(state, "sqs"), state)


def provision(state: StackState) -> restore.Restored | None:
    """The secret, the queues with what they held, the alarm; returns what was restored (None:
    the queue was there). The caller saves the state (the queue URLs)."""
    ensure_secret(localstack.client(state, "secretsmanager"), state)
    state.secret_id = SECRET_NAME
    restored = restore.restore(localstack.client(state, "sqs"), state)
    cloudwatch.ensure(localstack.client(state, "cloudwatch"), state)
    return restored
