"""The `sandbox` command: what the Makefile, the workshop and the drills do, from a terminal.

One module per command group, each adding its commands to the one app (`sandbox.cli.app`);
`--help` lists the commands in the order imported below, then the groups (fault, dlq ...).
"""

# isort: off
from sandbox.cli import stack, orders, failover, drills, dlq  # noqa: F401  (their commands)
from sandbox.cli.app import app, main

# isort: on

__all__ = ["app", "main"]
