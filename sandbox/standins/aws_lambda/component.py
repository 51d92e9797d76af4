"""The event source mapping's runner as a stack component."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.platform import process, runtime
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import StackState
from sandbox.spec.event_source import RunnerSettings


def stop_seconds(settings: RunnerSettings) -> float:
    """How long an instance asked to stop may take: the batch it is invoking, then the one it
    received meanwhile (that receive's long poll first), and their deletes."""
    return 2 * settings.function_timeout_seconds + settings.wait_time_seconds + 5


@dataclass
class ConsumerRunner(Component):
    """A ``python -m sandbox.standins.aws_lambda.runner`` process group, reading the queue and
    the secret the stack provisioned."""

    name: str = "consumer"
    title = "consumer runner"
    #: Alive is all there is to tell (it answers no port): a start never waits, so a runner that
    #: dies at once shows as down in `sandbox status` instead of failing `up` after a wait.
    wait_on_start = False

    def command(self, state: StackState) -> process.Command:
        return process.module_command(
            "sandbox.standins.aws_lambda.runner", state.run_dir, "consumer"
        )

    def stop_timeout(self, state: StackState) -> float:
        """Each instance finishes what it holds first (`runner.stop_seconds`)."""
        return stop_seconds(state.runner)

    def healthy(self, state: StackState) -> bool:
        return runtime.alive(state, self.name)
