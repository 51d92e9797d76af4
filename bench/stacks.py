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
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from sandbox import stack
from sandbox.platform.state import NotRunning, StackState


@dataclass
class _Run:
    run_dir: Path
    state: StackState | None = None
    ok: bool = False


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
    run = _Run(Path(tempfile.mkdtemp(prefix=f"nzrpo-bench-{name.replace(' ', '-')}-")))
    # Each step below is undone in reverse order, every one of them even if one before it raised.
    with contextlib.ExitStack() as undo:
        undo.callback(_keep_logs_or_remove, run, name, log)
        undo.enter_context(mock.patch.dict(os.environ, SANDBOX_RUN_DIR=str(run.run_dir)))
        undo.callback(_tear_down, run, name, log)
        run.state, _ = stack.up(
            options, report=lambda step: log(f"{name}: {step}"), directory=run.run_dir
        )
        if "dashboard" in run.state.pids:
            stack.stop(run.state, "dashboard")
        yield run.state
        run.ok = not failed()


def _tear_down(run: _Run, name: str, log: Callable[[str], None]) -> None:
    try:
        with _uninterrupted():
            try:
                if run.state is not None:
                    run.state.save()  # the pids as this process last knew them
                    log(f"stopping the {name} stack")
            finally:
                with contextlib.suppress(NotRunning):  # a start that failed cleaned up
                    stack.down(force=True, report=lambda step: None, directory=run.run_dir)
    except BaseException:
        run.ok = False  # a teardown that failed keeps the logs too
        raise


def _keep_logs_or_remove(run: _Run, name: str, log: Callable[[str], None]) -> None:
    if not run.ok and (run.run_dir / "logs").exists():
        log(f"{name}: logs kept in {run.run_dir / 'logs'}")
    else:
        shutil.rmtree(run.run_dir, ignore_errors=True)


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """A second Ctrl-C (or SIGTERM) must not leave a stack half torn down. (Signals can be set
    only in the main thread; elsewhere they reach the main thread anyway.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
