"""wrk (Debian's package): an outside HTTP load generator over keep-alive, as browsers, SDKs and
HTTP client sessions connect. One run, and what it measured.

Its script, `bench/wrk.lua` beside this file, says what each request is (``mode``: a plain GET,
an order for ``POST /orders``, or an SQS ``SendMessage``) and prints the summary as one JSON line.
One wrk thread holds all the connections: it takes a core's sliver, not a core, from the servers.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk.lua")
TIMEOUT_SECONDS = 30  # a request slower than this is an error (wrk's own default: 2 s)


@dataclass(frozen=True)
class Run:
    """One wrk run: the answers it counted (any status), the errors among them, its latencies."""

    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        """Answers per second that were not errors (a 4xx or 5xx is one, as a socket error)."""
        return max(0, self.requests - self.errors.get("status", 0)) / self.seconds

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def combined(runs: list[Run]) -> Run:
    """Runs taken in turns with others, as one: their answers and errors added up over their
    time added up, and the median of their p50s and of their p99s."""
    return Run(
        runs[0].connections,
        sum(r.requests for r in runs),
        sum(r.seconds for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        {kind: sum(r.errors.get(kind, 0) for r in runs) for kind in runs[0].errors},
    )


def require() -> str:
    """wrk's path, or an error that says how to get it."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `make install` installs it (Debian's package)")
    return found


def run(
    url: str,
    connections: int,
    seconds: int,
    *,
    mode: str = "get",
    env: dict[str, str] | None = None,
    headers: tuple[str, ...] = (),
) -> Run:
    """``connections`` keep-alive connections to ``url``, each sending its next request as soon as
    the last is answered, for ``seconds``. ``env``: the script's settings (WRK_TOKEN, ...)."""
    argv = [require(), "-t1", f"-c{connections}", f"-d{seconds}s"]
    argv += ["--timeout", f"{TIMEOUT_SECONDS}s", "-s", str(SCRIPT), url]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run(
        argv,
        env={**os.environ, "WRK_MODE": mode, **(env or {})},
        capture_output=True,
        text=True,
        timeout=seconds + TIMEOUT_SECONDS + 30,
        check=False,
    )
    summary = next((line for line in reversed(done.stdout.splitlines()) if line[:1] == "{"), None)
    if done.returncode != 0 or summary is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"wrk failed ({done.returncode}): {' '.join(tail)}")
    found = json.loads(summary)
    return Run(
        connections,
        found["requests"],
        found["seconds"],
        found["p50_ms"],
        found["p99_ms"],
        found["errors"],
    )
