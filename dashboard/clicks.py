"""A button's click acted on once, and its outcome kept where Streamlit's reruns cannot drop it.

Every read or write of ``st.session_state`` is a point where Streamlit may stop the run for a
newer request (its `SafeSessionState` yields first). A callback that does slow work (stopping
the traffic waits for it to exit) and then writes its outcome there loses the write when the
live part's refresh comes in meanwhile; and the click, its callback unfinished, is delivered
again to the next run, which acts a second time: "Stop traffic" stopped the traffic, then
answered "no traffic was running" (seen on a busy machine). So the mark of a click acted on and
its notice live here, per browser session, in plain dicts that never yield; a run that reaches
the script (`done`) ends the click.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.errors import readable

Notice = tuple[str, str]  # ("success" | "error", text)

#: Sessions remembered: a tab closed leaves its entry behind, so the oldest go past this many.
MAX_SESSIONS = 100

_lock = threading.Lock()
_acted: dict[str, set[str]] = {}  # session -> the labels of the clicks acted on in this run
_notices: dict[str, Notice] = {}  # session -> the last action's outcome


def _session() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def act(label: str, action: Callable[[], object]) -> None:
    """Run ``action`` for a click of ``label`` unless this click was acted on already, and keep
    its notice: the line it returns; none for a job it started (the job panel shows it); for an
    error, "<label> failed: <why>" in one line, never a traceback."""
    session = _session()
    with _lock:
        if label in _acted.get(session, set()):
            return
    try:  # Streamlit's own stop may end it first (not an Exception): then it has not acted
        outcome = action()
    except Exception as error:
        notice: Notice | None = ("error", f"{label} failed: {readable(error)}")
    else:
        notice = ("success", outcome) if isinstance(outcome, str) else None
    with _lock:
        _acted[session] = _acted.pop(session, set()) | {label}  # re-added last, like the notice:
        _notices.pop(session, None)  # the sessions acted on most recently are the ones kept
        if notice is not None:
            _notices[session] = notice
        for kept in (_acted, _notices):
            while len(kept) > MAX_SESSIONS:
                del kept[next(iter(kept))]


def done() -> None:
    """The page's script is running: the callbacks of this run's click, if any, have run."""
    with _lock:
        _acted.pop(_session(), None)


def forget() -> None:
    """Every session's clicks and notices gone (a test's fresh page; AppTest's sessions all
    share one id)."""
    with _lock:
        _acted.clear()
        _notices.clear()


def notice() -> Notice | None:
    """The last action's outcome in this session, until the next action."""
    with _lock:
        return _notices.get(_session())
