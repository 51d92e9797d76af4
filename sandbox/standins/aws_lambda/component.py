"""The event source mapping's runner as a stack component."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.platform import process, runtime
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import StackState


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
        """Each instance finishes its batch first (a long poll, then a function run)."""
        return state.runner.function_timeout_seconds + state.runner.wait_time_seconds + 5

    def healthy(self, state: StackState) -> bool:
        return runtime.alive(state, self.name)
