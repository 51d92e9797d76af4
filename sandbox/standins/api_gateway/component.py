"""The API gateway as a stack component: its server process, and how to tell it answers."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from sandbox.platform import process
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import StackState


@dataclass
class GatewayService(Component):
    """A ``python -m sandbox.standins.api_gateway.server`` process; its keys and user pool are
    made by `sandbox up` (`sandbox.standins.cognito`)."""

    name: str = "api"
    title = "API gateway"

    def command(self, state: StackState) -> process.Command:
        return process.module_command("sandbox.standins.api_gateway.server", state.run_dir, "api")

    def stop_timeout(self, state: StackState) -> float:
        return 5.0

    def healthy(self, state: StackState) -> bool:
        return httpx.get(f"{state.api_url}/health", timeout=2).status_code == 200
