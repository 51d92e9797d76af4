"""The workshop's page (the guidance's CloudWatch dashboard, and the buttons of a workshop) as a
stack component: Streamlit serving ``dashboard/app.py``, so `make up` gives the workshop its page.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import httpx

from sandbox.platform import network, process
from sandbox.platform.lifecycle import Component
from sandbox.platform.state import PROJECT_DIR, StackState


@dataclass
class Dashboard(Component):
    """It reads the running stack: nothing to make before it starts."""

    name: str = "dashboard"
    title = "dashboard"

    def command(self, state: StackState) -> process.Command:
        argv = streamlit_argv("app.py", state.ports["dashboard"], state.bind_host)
        env = {"SANDBOX_RUN_DIR": state.run_dir, "PYTHONUNBUFFERED": "1", **STREAMLIT_ENV}
        return process.Command(argv=argv, log=state.path("logs", "dashboard.log"), env=env)

    def stop_timeout(self, state: StackState) -> float:
        return 5.0

    def healthy(self, state: StackState) -> bool:
        return httpx.get(f"{state.url(self.name)}/_stcore/health", timeout=2).status_code == 200


#: What `dashboard/aws_app.py` (the page on a deployed stack, which `sandbox dashboard --target
#: aws` serves) reads to know which stack to show.
STACK_ENV, REGION_ENV = "SANDBOX_AWS_STACK", "SANDBOX_AWS_REGION"

#: The project on the path: a page imports `dashboard`, which is not an installed package.
STREAMLIT_ENV = {"PYTHONPATH": str(PROJECT_DIR)}


def streamlit_argv(page: str, port: int, address: str = network.LOOPBACK) -> list[str]:
    """Streamlit serving ``dashboard/<page>`` on ``address`` (loopback unless the stack's
    containers), headless, without usage stats."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PROJECT_DIR / "dashboard" / page),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button: this page is for a workshop, not for publishing
    ]


def dashboard_url(state: StackState) -> str:
    """Where the host's browser opens it."""
    return state.public_url("dashboard")
