"""The Lambda stand-in: load a handler by name and invoke it as the Lambda runtime would.

Shared by the gateway (producer) and the SQS runner (consumer). A function that runs past its
timeout is stopped with `FunctionTimeout`, and the caller throws the instance away, as Lambda does.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


class FunctionTimeout(BaseException):
    """The invocation ran past the function timeout."""


def request_id() -> str:
    """A random UUID, as AWS gives each request. Not `uuid.uuid4`: that reads the kernel's random
    source, a system call that hands the GIL to the gateway's other threads (two a request, this
    id and API Gateway's); an id must be unique, not secret."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


@dataclass
class LambdaContext:
    """The context object a handler receives (the parts Powertools and handlers use)."""

    function_name: str
    timeout_seconds: float
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=request_id)
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_seconds - (time.monotonic() - self.started)
        return max(0, int(left * 1000))


def load_handler(spec: str) -> Handler:
    """``"package.module:function"`` -> the function (importing the module runs its init code)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "handler")


def invoke(handler: Handler, event: dict[str, Any], name: str, timeout: float) -> Any:
    """Call ``handler`` with a fresh context; raise `FunctionTimeout` after ``timeout`` seconds.

    The timer is a SIGALRM, so call this from a process's main thread.
    """
    with _deadline(timeout):
        return handler(event, LambdaContext(function_name=name, timeout_seconds=timeout))


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise FunctionTimeout(f"function timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
