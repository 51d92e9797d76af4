"""How an action's failure reads on the page: one line, like the CLI's, never a traceback."""

from __future__ import annotations

from sandbox.spec.errors import StackError

# What the sandbox raises on purpose: the message alone says what to do (as `sandbox.cli.main`).
EXPECTED = (StackError, FileNotFoundError, TimeoutError, ValueError, RuntimeError, LookupError)


def readable(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(error, EXPECTED) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
