"""``python -m sandbox.serve COMPONENT``: one stack component in the foreground, for a container.

Each service of `compose/docker-compose.yml` runs this. It loads the state (``SANDBOX_RUN_DIR``),
asks the component for its `process.Command` (built here, so ``sys.executable`` and the
binaries are the image's), prepares the component here, where it runs (a node's first data, the
proxy's config), and replaces itself with the command: the server is then the container's one
process below its init, as a native start's pid is the server.

It does what a native start does around that: output goes to the component's log file (where
the errors, the tests and a post-mortem look; ``docker compose logs`` shows one line saying
where), and a server that needs the service user gets it here, from root, as `process.spawn`
gives it natively: the service user may not be able to read the project.
"""

from __future__ import annotations

import os
import pwd
import sys
from typing import NoReturn

from sandbox import process, stack
from sandbox.state import load


def main(argv: list[str]) -> NoReturn:
    names = [item.name for item in stack.components()]
    if len(argv) != 1 or argv[0] not in names:
        sys.exit(f"usage: python -m sandbox.serve {'|'.join(names)}")
    try:
        state = load()
        server = stack.component(argv[0])
        command = server.command(state)
    except Exception as error:  # one line in `docker compose logs`, not a traceback
        sys.exit(f"{argv[0]}: {type(error).__name__}: {error}")
    print(f"{argv[0]}: output in {command.log}", flush=True)
    to_log(command)
    try:
        server.prepare(state)  # a node's data, a config: here, where the server runs
    except Exception as error:  # in its log, where a failed start says to look
        sys.exit(f"{argv[0]}: preparing failed: {type(error).__name__}: {error}")
    run(command)


def to_log(command: process.Command) -> None:
    """From here on, stdout and stderr go to the server's log file, and stdin is empty."""
    command.log.parent.mkdir(parents=True, exist_ok=True)
    log = os.open(command.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    process.chown(command.log, command.user)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)


def run(command: process.Command) -> NoReturn:
    """Become ``command``: its user, its environment, cwd /."""
    os.chdir("/")
    if command.user and os.geteuid() == 0:
        entry = pwd.getpwnam(command.user)
        os.initgroups(command.user, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    os.execvpe(command.argv[0], command.argv, {**os.environ, **command.env})


if __name__ == "__main__":
    main(sys.argv[1:])
