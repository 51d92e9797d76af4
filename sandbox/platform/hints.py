"""How a printed hint spells the `sandbox` command, so that it runs as printed.

The CLI lives in the project's virtualenv (``.venv/bin/sandbox``), which a fresh clone's shell
does not have on its PATH: a hint that says `sandbox status` fails there with "command not
found". Every hint the tools print (the CLI's, the dashboard's, an error's) goes through
`command`, which spells it the way that works in the user's shell: plain ``sandbox`` when that
name finds this very install (the venv activated: ``source .venv/bin/activate``), else the path
to it, relative when the user stands above it (``.venv/bin/sandbox`` in the project's folder).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import sys
from pathlib import Path


def command(args: str = "") -> str:
    """``sandbox ARGS`` as the user can type it here (without the backticks)."""
    return f"{_spelled()} {args}".strip()


@functools.cache
def _spelled() -> str:
    """Worked out once per process: its PATH and folder do not change under it."""
    ours = Path(sys.prefix) / "bin" / "sandbox"
    if not ours.exists():  # not run from a virtualenv of this project (a container's install)
        return "sandbox"
    found = shutil.which("sandbox")
    if found and _same(Path(found), ours):
        return "sandbox"
    try:
        relative = os.path.relpath(ours, Path.cwd())
    except (OSError, ValueError):  # no current folder (removed), or another drive
        relative = ""
    if relative and not relative.startswith(".."):
        return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")
    return shlex.quote(str(ours))


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
