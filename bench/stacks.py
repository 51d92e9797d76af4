"""The benchmark's stacks, their lifecycle written once for every section that needs one.

Each runs on free ports in a temporary run dir of its own (``SANDBOX_RUN_DIR`` pointing there
meanwhile), as the test suite's does, so a workshop stack on the same machine is never touched.
It is always torn down (``down --force``: its queue holds nothing anyone needs), a second Ctrl-C
or SIGTERM during the teardown ignored, and its logs are kept if what ran on it failed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sandbox import stack
from sandbox.state import NotRunning, StackState


@contextlib.contextmanager
def own_stack(
    options: stack.Options,
    name: str,
    log: Callable[[str], None],
    failed: Callable[[], bool] = lambda: False,
) -> Iterator[StackState]:
    """A new stack for the ``with`` block, its dashboard stopped (not measured: it would only
    take CPU from the rest). ``failed``: asked at the end, besides an exception, whether to keep
    the logs."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"nzrpo-bench-{name.replace(' ', '-')}-"))
    previous = os.environ.get("SANDBOX_RUN_DIR")
    os.environ["SANDBOX_RUN_DIR"] = str(run_dir)
    state: StackState | None = None
    ok = False
    try:
        state, _ = stack.up(options, report=lambda step: log(f"{name}: {step}"), directory=run_dir)
        if "dashboard" in state.pids:
            stack.stop(state, "dashboard")
        yield state
        ok = not failed()
    finally:
        with _uninterrupted():
            if state is not None:
                log(f"stopping the {name} stack")
                state.save()  # the pids as this process last knew them
            with contextlib.suppress(NotRunning):  # a start that failed cleaned up after itself
                stack.down(force=True, report=lambda step: None, directory=run_dir)
        if not ok and (run_dir / "logs").exists():
            log(f"{name}: logs kept in {run_dir / 'logs'}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        if previous is None:
            os.environ.pop("SANDBOX_RUN_DIR", None)
        else:
            os.environ["SANDBOX_RUN_DIR"] = previous


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """A second Ctrl-C (or SIGTERM) must not leave a stack half torn down."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
