"""Long actions (failover, failback, drill) in a background thread, so the page stays live.

Streamlit re-executes app.py on every rerun but keeps imported modules, so the one job lives
here, shared by every browser tab of this server: a second tab sees the drill the first one
started, and nobody fails the database over in the middle of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.errors import readable


@dataclass
class Job:
    """One long action: what it is, how far it got, and how it ended."""

    name: str
    started: float = field(default_factory=time.time)
    finished: float | None = None
    result: str = ""
    error: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def running(self) -> bool:
        return self.finished is None

    def count(self, key: str) -> None:
        """Add one to a progress counter (drill senders call this from several threads)."""
        with self.lock:
            self.progress[key] = self.progress.get(key, 0) + 1

    def note(self, **values: Any) -> None:
        with self.lock:
            self.progress.update(values)


_lock = threading.Lock()
_current: Job | None = None


def current() -> Job | None:
    """The running job, or the last one (its outcome stays on the page until the next)."""
    return _current


def start(name: str, work: Callable[[Job], str]) -> Job:
    """Run ``work(job)`` in a thread; its return value is the job's one-line result.

    Refused while another job runs: two failovers at once would fight over the same nodes.
    """
    global _current
    with _lock:
        if _current is not None and _current.running:
            raise RuntimeError(f"{_current.name} is still running: wait for it to finish")
        job = _current = Job(name)

    def run() -> None:
        try:
            job.result = work(job)
        except Exception as error:  # shown on the page; the thread must not die silently
            job.error = readable(error)
        finally:
            job.finished = time.time()

    threading.Thread(target=run, name=f"dashboard: {name}", daemon=True).start()
    return job
