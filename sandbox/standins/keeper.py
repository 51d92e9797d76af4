"""Who restarts the control plane: its keeper, a small process with that one job.

The control plane restarts every managed service of the stack (`sandbox.standins.control_plane`),
this keeper among them; the keeper restarts the control plane, when its process has died (for
`SERVICE_DEAD_SECONDS`) or its heartbeat is stale (a frozen one). So either can be killed and is
back within seconds, each restarted by the other; only both at once stay down until `make up`.
Natively only: on the Compose profile the engine's restart policy keeps the control plane's
container running. A stop on purpose takes the control plane's pid off record, and the keeper
then leaves it down; stopping the control plane stops its keeper first.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.platform import process, runtime
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import StackState, load

TICK_SECONDS = 0.5
#: As the control plane waits for a dead service: a process gone is not coming back by itself.
SERVICE_DEAD_SECONDS = 1.0


@dataclass
class Keeper(Component):
    """A ``python -m sandbox.standins.keeper`` process; the control plane starts it."""

    name: str = "keeper"
    title = "the control plane's keeper"

    def command(self, state: StackState) -> process.Command:
        return process.module_command("sandbox.standins.keeper", state.run_dir, "keeper")

    def stop_timeout(self, state: StackState) -> float:
        return 5.0

    def healthy(self, state: StackState) -> bool:
        return runtime.alive(state, self.name)


def main() -> None:
    # Imported here: the control plane imports this module for `Keeper`.
    from sandbox.standins.aurora import cluster, events
    from sandbox.standins.control_plane import ControlPlaneService

    state = load(Path(os.environ["SANDBOX_RUN_DIR"]))
    plane = ControlPlaneService()
    stopping = process.on_stop()
    print("keeping the control plane", flush=True)
    lost_since: float | None = None
    while not stopping.is_set():
        time.sleep(TICK_SECONDS)
        if not state.path("state.json").exists():
            return  # the stack was taken down (its keeper outlived it): nothing to keep
        state.refresh()
        if "control-plane" not in state.pids or process.passes(
            functools.partial(plane.healthy, state)
        ):
            lost_since = None  # stopped on purpose, or running
            continue
        lost_since = lost_since or time.time()
        dead = not runtime.alive(state, plane.name)
        if dead and time.time() - lost_since < SERVICE_DEAD_SECONDS:
            continue
        how = "down" if dead else "not beating"
        why = f"control-plane {how} for {time.time() - lost_since:.1f} s"
        with contextlib.suppress(cluster.Busy), cluster.exclusive(state, "the keeper", wait=False):
            if "control-plane" not in state.pids or process.passes(
                functools.partial(plane.healthy, state)
            ):
                continue  # stopped, or restarted by `make up`, meanwhile
            print(why, flush=True)
            events.record(state, "service-lost", why, node=plane.name, since=lost_since)
            plane.restart(state)  # not its stop: that would stop this keeper first
            state.save()
            events.record(
                state,
                "service-restarted",
                "control-plane restarted",
                node=plane.name,
                lost=lost_since,
            )
            lost_since = None


if __name__ == "__main__":
    main()
