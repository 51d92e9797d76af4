"""``python -m sandbox.stack.serve COMPONENT``: one stack component in the foreground, for a
container; ``setup`` and ``init`` are the compose file's one-shots around them.

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

import dataclasses
import os
import pwd
import sys
from pathlib import Path
from typing import NoReturn

from sandbox import stack
from sandbox.platform import compose, process
from sandbox.platform.state import NotRunning, load, private_dir, run_dir
from sandbox.spec.queue import function_timeout_for


def main(argv: list[str]) -> NoReturn:
    names = [item.name for item in stack.components()]
    if len(argv) != 1 or argv[0] not in [*names, *JOBS]:
        sys.exit(f"usage: python -m sandbox.stack.serve {'|'.join([*JOBS, *names])}")
    if argv[0] in JOBS:
        try:
            JOBS[argv[0]]()
        except Exception as error:  # one line in `docker compose logs`, not a traceback
            sys.exit(f"{argv[0]}: {type(error).__name__}: {error}")
        sys.exit(0)
    try:
        state = load()
        server = stack.component(argv[0])
        command = server.command(state)
    except Exception as error:  # one line in `docker compose logs`, not a traceback
        sys.exit(f"{argv[0]}: {type(error).__name__}: {error}")
    print(f"{argv[0]}: output in {command.log}", flush=True)
    to_log(command)
    try:
        state.pids[argv[0]] = os.getpid()  # the server's pid where it runs: it becomes the server
        state.save()
        server.prepare(state)  # a node's data, a config: here, where the server runs
    except Exception as error:  # in its log, where a failed start says to look
        sys.exit(f"{argv[0]}: preparing failed: {type(error).__name__}: {error}")
    run(command)


def setup() -> None:
    """The file's first one-shot: a new stack's state in the run volume, with the file's ports,
    its queue's retry budget (`queue_options`) and fresh passwords (a state there already, a
    host CLI's or the last ``up``'s, is kept), and the data root made the service user's."""
    directory = run_dir()
    try:
        state = load(directory)
        asked = {name: int(os.environ[f"SANDBOX_PORT_{name.upper()}"]) for name in state.ports}
        if asked != state.ports:  # the file would publish and probe ports nobody listens on
            raise RuntimeError(
                f"the stack in {directory} listens on {state.ports}, not {asked}: "
                "set the SANDBOX_PORT_* it was started with, or `down -v` it first"
            )
        print(f"setup: the stack in {directory} (project {state.project}) is kept", flush=True)
    except NotRunning:
        ports = {
            name: int(os.environ[f"SANDBOX_PORT_{name.upper()}"]) for name in stack.DEFAULT_PORTS
        }
        data = Path(os.environ.get("SANDBOX_DATA_ROOT") or compose.DATA_VOLUME)
        options = queue_options(stack.Options(runtime="compose"))
        state = stack.fresh_state(options, directory, data, compose.SERVICE_USER, ports)
        state.project = os.environ.get("SANDBOX_PROJECT") or state.project
        print(f"setup: a new stack in {directory} (project {state.project})", flush=True)
    private_dir(directory)
    process.owned_dir(Path(state.data_root), state.service_user or None)
    state.save()


#: `sandbox up`'s ``--max-receive-count`` and ``--visibility-timeout``, for the file: a new
#: stack's queue (empty: the guidance's 25 receives of 6 s). The consumer's timeout follows
#: the visibility timeout by AWS's 6x rule, as `sandbox up`'s does when not given.
QUEUE_VARIABLES = {
    "SANDBOX_MAX_RECEIVE_COUNT": "max_receive_count",
    "SANDBOX_VISIBILITY_TIMEOUT": "visibility_timeout_seconds",
}


def queue_options(options: stack.Options) -> stack.Options:
    """``options`` with the queue the file's variables ask for (`QUEUE_VARIABLES`)."""
    asked = {}
    for variable, knob in QUEUE_VARIABLES.items():
        value = os.environ.get(variable, "")
        if not value:
            continue
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{variable} must be a whole number of at least 1, not {value!r}")
        asked[knob] = int(value)
    queue = dataclasses.replace(options.queue, **asked)
    timeout = float(function_timeout_for(queue.visibility_timeout_seconds))
    runner = dataclasses.replace(options.runner, function_timeout_seconds=timeout)
    return dataclasses.replace(options, queue=queue, runner=runner)


def init() -> None:
    """The file's second one-shot, once LocalStack, the nodes and the proxy are healthy: the
    queue, the DLQ, the alarm, the secret, the user pool, the synchronous reader."""
    state = load()
    stack.provision(state)
    print(f"init: queue {state.queue_url}, secret {state.secret_id}", flush=True)


#: The one-shot services of compose/docker-compose.yml.
JOBS = {"setup": setup, "init": init}


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
