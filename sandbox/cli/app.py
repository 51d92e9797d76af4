"""The `sandbox` command's app: its options shared by several commands, and `main`, which turns
every known failure into one line on stderr and a non-zero exit, never a traceback: 2 for bad
usage (click's own, or a `UsageError` a command finds), 130 for Ctrl-C (saying how the stack
stands), 1 for the rest.

What a command needs beyond its options (the stack, psycopg, boto3, httpx, rich's tables) it
imports when it runs, not at the top of its module: building the app and `sandbox --help` load
none of it (the CLI's start time; tests/unit/test_cli_start.py holds it).
"""

from __future__ import annotations

import re
import sys
import textwrap
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from typer.exceptions import TyperException

from sandbox.drills.targets.aws import DEFAULT_REGION
from sandbox.platform.hints import command as hint
from sandbox.platform.state import NotRunning, load
from sandbox.spec.errors import StackError

if TYPE_CHECKING:
    from rich.table import Column, Table

app = typer.Typer(
    help="Near-zero-RPO sandbox: SQS in front of Aurora, emulated on loopback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: it wraps at the terminal's width, cuts nothing
)


console = Console()


class UsageError(StackError):
    """Bad usage that a command finds itself (a value, or a mix of options, that no option's
    type refuses): one line and exit 2, as click's own usage errors."""


def table(*columns: str | Column, **options) -> Table:
    """A table that never cuts a cell short: a value too long for the terminal wraps (folds)
    instead of ending in "…", so an id, a time, a name or a path is always there whole."""
    from rich.table import Column, Table

    return Table(
        *(Column(c, overflow="fold") if isinstance(c, str) else c for c in columns), **options
    )


KEEP = "\x00"  # a space textwrap does not break at (it is no whitespace to it)


def fill(text: str, first: str = "", rest: str = "") -> str:
    """``text`` wrapped at the terminal's width between words only, and never inside a
    `command` (it is copied whole, from one line); ``first`` and ``rest`` indent its lines."""
    whole = re.sub(r"`[^`]*`", lambda command: command[0].replace(" ", KEEP), text)
    wrapped = textwrap.fill(
        whole,
        width=max(console.width, len(first) + 20),
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped.replace(KEEP, " ")


class Interrupted(Exception):
    """Ctrl-C in a command that says what it had done: `main` prints ``said``, exits 130.

    Not a KeyboardInterrupt: typer turns those into a silent exit 130, as it does for any
    command that does not catch its Ctrl-C (`main` then says how the stack stands)."""

    def __init__(self, said: str) -> None:
        super().__init__(said)
        self.said = said


def interrupted(done: str) -> Interrupted:
    """Ctrl-C in a long command: what it had done and how the stack stands, to raise.

    ``done`` completes "interrupted ...", e.g. "after 340 of 1000 orders, during the fault"."""
    return Interrupted(f"interrupted {done}. {_stands()}")


def _stands() -> str:
    """How the stack stands (`chaos.standing`, the one place that says it), or why unknown."""
    from sandbox.drills import chaos

    try:
        return chaos.standing(load())
    except NotRunning:
        return "There is no stack."
    except KeyboardInterrupt:
        return f"(Ctrl-C again: not checked; `{hint('status')}` shows how the stack stands)"
    except Exception as error:  # a look that failed must not hide the interruption
        return f"How the stack stands is unknown ({error}); `{hint('status')}` shows it."


# What `drill` and `dashboard` share: which stack (this sandbox, or one deployed from aws/).
TargetOption = Annotated[
    str, typer.Option(help="local (this sandbox) or aws (a stack deployed from aws/)")
]


StackOption = Annotated[
    str | None, typer.Option("--stack", help="CloudFormation stack (--target aws)")
]


RegionOption = Annotated[
    str | None, typer.Option(help=f"AWS region (--target aws; default {DEFAULT_REGION})")
]


def check_target(target: str, stack_name: str | None, region: str | None) -> None:
    if target not in ("local", "aws"):
        raise UsageError("--target must be local or aws")
    if target == "aws" and not stack_name:
        raise UsageError("--target aws needs --stack NAME (the CloudFormation stack)")
    if target == "local" and (stack_name or region):
        raise UsageError("--stack and --region are for --target aws")


def main() -> None:
    """Entry point: known failures become one line on stderr and a non-zero exit code (2 for bad
    usage, 130 for Ctrl-C, else 1), never a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except Interrupted as stopped:
        print(stopped.said, file=sys.stderr)
        sys.exit(130)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except TyperException as error:  # bad usage: one line, not a box
        if type(error).__name__ != "NoArgsIsHelpError":  # (the help is already printed)
            print(f"error: {error.format_message()} ({_see_help()})", file=sys.stderr)
        sys.exit(2)
    except UsageError as error:
        print(f"error: {error} ({_see_help()})", file=sys.stderr)
        sys.exit(2)
    except (
        StackError,
        FileNotFoundError,
        LookupError,
        TimeoutError,
        ValueError,
        RuntimeError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # anything else: still one line, with where to look
        print(f"error: {type(error).__name__}: {error} (logs: .run/logs)", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # (before or after the command: typer answers one inside it)
        code = 130
    if code == 130:  # typer's answer to a Ctrl-C that the command did not catch itself
        print(f"interrupted. {_stands()}", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)


def _see_help() -> str:
    """Where the help of the command typed is: `sandbox drill --help`, `sandbox dlq show --help`."""
    words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    path, group = [], typer.main.get_command(app)
    for word in words:
        group = getattr(group, "commands", {}).get(word)
        if group is None:
            break
        path.append(word)
    return f"see `{hint(' '.join([*path, '--help']))}`"
