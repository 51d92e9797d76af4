"""Who reaches whom at what address: the one place that knows the network a server runs on.

Natively every server binds 127.0.0.1 and everything reaches everything there. On the Compose
profile each server has its own container on the stack's bridge network: it binds all of its
container's addresses, the others reach it by its service name (Docker's DNS), and the host
reaches it at 127.0.0.1 through a port published on loopback only. A port has the same number on
all three, so only the host name differs, and a caller names the server (``n1``, ``proxy``, ...)
and the point of view:

- `here`: from the process asking (the CLI on the host, or a server in its container);
- `peer`: from a server of the stack, for what goes into their files and arguments (the proxy's
  target, a reader's primary_conninfo, the secret the functions read, a PostgreSQL tool's ``-h``),
  whichever process writes them;
- `bind`: what a server listens on, decided by where servers run, not by who writes the config.
"""

from __future__ import annotations

import os

LOOPBACK = "127.0.0.1"
#: Set in every container of compose/docker-compose.yml: this process runs on the stack's network.
IN_CONTAINER = "SANDBOX_IN_CONTAINER"


def in_container() -> bool:
    return os.environ.get(IN_CONTAINER) == "1"


def here(runtime: str, server: str) -> str:
    """Where this process reaches ``server``."""
    return server if runtime == "compose" and in_container() else LOOPBACK


def peer(runtime: str, server: str) -> str:
    """Where the stack's own servers reach ``server``."""
    return server if runtime == "compose" else LOOPBACK


def bind(runtime: str) -> str:
    """What a server listens on: its container's addresses (published on the host's loopback
    only, by the compose file), or loopback natively."""
    return "0.0.0.0" if runtime == "compose" else LOOPBACK


def clients(runtime: str) -> str:
    """Whom PostgreSQL lets in with a password (pg_hba.conf): loopback natively; on Compose the
    stack's bridge network (``samenet``: the subnets of the node's container), where the other
    servers are and where the host's connections to a published port arrive from."""
    return "samenet" if runtime == "compose" else f"{LOOPBACK}/32"
