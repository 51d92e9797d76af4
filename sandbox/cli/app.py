"""The `sandbox` command's app: its options shared by several commands, and `main`, which turns
every known failure into one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from typer.exceptions import TyperException

from sandbox.drills.targets.aws import DEFAULT_REGION
from sandbox.spec.errors import StackError

app = typer.Typer(
    help="Near-zero-RPO sandbox: SQS in front of Aurora, emulated on loopback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: it wraps at the terminal's width, cuts nothing
)


console = Console()


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
        raise StackError("--target must be local or aws")
    if target == "aws" and not stack_name:
        raise StackError("--target aws needs --stack NAME (the CloudFormation stack)")
    if target == "local" and (stack_name or region):
        raise StackError("--stack and --region are for --target aws")


def main() -> None:
    """Entry point: known failures become one line on stderr and exit code 1, never a traceback."""
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except TyperException as error:  # bad usage: one line, not a box
        if type(error).__name__ != "NoArgsIsHelpError":  # (the help is already printed)
            print(
                f"error: {error.format_message()} (see `sandbox {_command()}--help`)",
                file=sys.stderr,
            )
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _command() -> str:
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    return f"{command} " if command in typer.main.get_command(app).commands else ""
