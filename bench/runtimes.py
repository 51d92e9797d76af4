"""The two runtimes side by side, on the same machine in one run: the native stack (servers as
processes on loopback) is the baseline the Compose stack (the same servers as containers of
compose/docker-compose.yml on the Docker engine) is set against.

- **image build**: `docker compose build --no-cache` (cold: every layer from Debian's and PyPI's
  mirrors; the base image must be there already, `scripts/install-docker` makes it) against the
  same build with its cache (warm: what each `up` of the Compose profile pays);
- **up**: `stack.up` on free ports until every server answers (the image warm);
- **memory**, idle after up: the stack's PSS, the same measure on both (read from the host's
  /proc: the pid on record for a container is its init's host pid, as the engine reports it;
  `sandbox status` shows the native figure natively and `docker stats`' on Compose), and the
  Compose stack's `docker stats` total (its containers' cgroup memory less their page cache);
- **the same crash drill** on each (both paths): RTO and the queued path's latency percentiles,
  and its account (the section fails if the queued path lost or doubled an order).

Each stack is started by `bench.stacks.own_stack` (its dashboard stopped, on both), one after
the other, so they never compete for the machine.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench import stats
from bench.model import Figure, Section
from bench.stacks import own_stack
from sandbox import stack
from sandbox.drills import drill
from sandbox.platform import compose, process
from sandbox.platform.state import StackState

BASELINE = "native"
UNITS = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


@dataclass(frozen=True)
class Measured:
    runtime: str
    up_s: float
    pss_mib: float
    report: drill.DrillReport
    docker_stats_mib: float | None = None  # the Compose stack only


def run(count: int, log: Callable[[str], None]) -> Section:
    section = Section("runtimes", f"Native and Compose: up, memory, a crash drill of {count}/path")
    builds = {
        "cold": timed_build(cache=False, log=log),
        "warm": timed_build(cache=True, log=log),
    }
    measured = [on_own_stack(name, count, log) for name in ("native", "compose")]
    section.figures = figures(builds, measured)
    section.details = {
        m.runtime: {"up_seconds": m.up_s, "drill": asdict(m.report)} for m in measured
    }
    unsound = [
        m.runtime
        for m in measured
        for p in m.report.paths
        if p.path == "queue" and (p.lost or p.duplicates)
    ]
    section.error = "; ".join(f"{name}: the queued path lost or doubled orders" for name in unsound)
    return section


def timed_build(*, cache: bool, log: Callable[[str], None]) -> float:
    """Seconds `docker compose build` takes, with or without its layer cache."""
    with tempfile.TemporaryDirectory(prefix="nzrpo-bench-build-") as scratch:
        # Compose substitutes the whole file before a build, so any run dir will do.
        state = StackState(run_dir=scratch, service_user="", data_root=scratch, ports={}, nodes={})
        log(f"image build, {'warm' if cache else 'cold (--no-cache)'}")
        started = time.monotonic()
        compose.Compose().build(state, cache=cache)
        return time.monotonic() - started


def on_own_stack(name: str, count: int, log: Callable[[str], None]) -> Measured:
    options = stack.Options(auto_ports=True, runtime=name)  # type: ignore[arg-type]
    started = time.monotonic()
    with own_stack(options, f"{name} runtime", log) as state:
        up_s = time.monotonic() - started
        pids = host_pids(state)
        pss = sum(process.memory_mib(pid, frozenset(pids)) for pid in pids)
        in_docker = docker_stats_mib(state) if name == "compose" else None
        log(f"{name}: crash drill, {count} orders per path at the drill's default rate")
        report = drill.run(state, "crash", "both", count=count)
    return Measured(name, up_s, pss, report, in_docker)


def host_pids(state: StackState) -> list[int]:
    """Each server's process tree root as the host sees it: natively the state's pids; on
    Compose each container's init (the state's pid is the server's own, in its container)."""
    if state.runtime == "native":
        return list(state.pids.values())
    found = [compose.Compose().container(state, name) for name in state.pids]
    return [int(c.attrs["State"]["Pid"]) for c in found if c is not None]


def docker_stats_mib(state: StackState) -> float:
    """The Compose project's containers' memory, as `docker stats` reports it, summed."""
    runtime = compose.Compose()
    ids = runtime.docker(state, [*runtime.compose(state), "ps", "-q"], what="docker compose ps")
    usage = process.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *ids.stdout.split()]
    ).stdout.splitlines()
    return sum(mib(line.split("/")[0]) for line in usage)


def mib(amount: str) -> float:
    """``91.2MiB`` (docker stats' notation) in MiB."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?i?B)\s*", amount)
    if not match or match.group(2) not in UNITS:
        raise ValueError(f"not a docker stats amount: {amount!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def figures(builds: dict[str, float], measured: list[Measured]) -> list[Figure]:
    """Compose against native for each stack figure, the cold build against the warm one."""
    rows = [
        Figure("image build, warm (cached layers)", builds["warm"], "s", baseline=True),
        Figure(
            "image build, cold (--no-cache)",
            builds["cold"],
            "s",
            {"warm build": stats.ratio(builds["cold"], builds["warm"])},
        ),
    ]
    base = next((m for m in measured if m.runtime == BASELINE), None)

    def row(
        label: str, unit: str, value: Callable[[Measured], float | None], m: Measured
    ) -> Figure:
        is_base = m is base
        versus = {} if is_base else {BASELINE: stats.ratio(value(m), value(base) if base else None)}
        return Figure(f"{m.runtime}: {label}", value(m), unit, versus, baseline=is_base)

    for m in measured:
        queued = _queued(m)
        rows += [
            row("up, every server answering", "s", lambda x: x.up_s, m),
            row("stack memory idle (PSS)", "MiB", lambda x: x.pss_mib, m),
            row("crash drill RTO", "s", lambda x: x.report.rto_seconds, m),
        ]
        rows += [
            row(
                f"queued path latency {cut}",
                "ms",
                lambda x, cut=cut: _queued(x).latency_ms.get(cut),
                m,
            )
            for cut in ("p50", "p95", "p99")
        ]
        rows[-1].note = f"{queued.committed_once}/{queued.sent} committed once, {queued.lost} lost"
        if m.docker_stats_mib is not None:
            rows.append(
                Figure(
                    f"{m.runtime}: stack memory idle (docker stats)",
                    m.docker_stats_mib,
                    "MiB",
                    {
                        f"{BASELINE} PSS": stats.ratio(
                            m.docker_stats_mib, base.pss_mib if base else None
                        )
                    },
                    note="cgroup memory less page cache",
                )
            )
    return rows


def _queued(m: Measured) -> drill.PathReport:
    return next(p for p in m.report.paths if p.path == "queue")
