"""The one error the user must act on, raised anywhere in the sandbox."""

from __future__ import annotations


class StackError(RuntimeError):
    """Something the user must act on; the message says what. The CLI prints it on one line and
    exits non-zero; the dashboard shows it beside the button that raised it."""
