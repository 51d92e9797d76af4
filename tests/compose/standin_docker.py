"""A STAND-IN for the ``docker`` CLI, for machines without a Docker engine. Not Docker.

It implements only what `sandbox/compose.py` calls, by running the services of
`compose/docker-compose.yml` as plain host processes, so the tests exercise everything of the
Compose profile except the engine: the command lines, the compose file (its services, commands,
``user``, ``environment`` and variable substitution), `sandbox.serve` inside a "container", the
privilege drop, host pids, crash and failover on them, and ``down``.

What it cannot prove: image contents (`compose/Dockerfile` is never built; its ``ENV`` is mirrored
in `IMAGE_ENV` with the host's venv and PostgreSQL in place of the image's), mounts, namespaces
(``network_mode``/``pid`` host are what a process on the host has anyway), cgroups.

    info, compose version      "an engine answers" (not with STANDIN_DOCKER_ENGINE=down)
    compose ... build          recorded, nothing built
    compose ... up -d ... S    S's command, detached in its own session, as its user
    compose ... ps -q S        the "container id" of S if its process runs
    inspect -f '{{.State.Pid}}' ID       its pid (0 once it has exited)
    compose ... run --rm ... tools ARGV  ARGV as --user; its output and exit code passed on
    compose ... down           SIGKILL to what still runs; the records go

Every call is appended to ``$STANDIN_DOCKER_HOME/calls.jsonl``; "containers" are in
``containers.json`` and their output in ``<project>-<service>.log`` there.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HOME = Path(os.environ["STANDIN_DOCKER_HOME"])
PROJECT_DIR = Path(__file__).resolve().parents[2]
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
# compose/Dockerfile's ENV, with this host's venv and PostgreSQL instead of the image's. The
# LocalStack interpreter is left to its default (the checkout's .venv-localstack).
IMAGE_ENV = {
    "PATH": f"{PROJECT_DIR}/.venv/bin:{PG_BIN}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}
VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::([?-])([^}]*))?\}")


class Refused(Exception):
    """What real Docker would refuse too, or what the stand-in does not implement."""


def main(argv: list[str]) -> int:
    HOME.mkdir(parents=True, exist_ok=True)
    with (HOME / "calls.jsonl").open("a") as calls:
        sandbox_env = {k: v for k, v in os.environ.items() if k.startswith("SANDBOX_")}
        calls.write(json.dumps({"argv": argv, "env": sandbox_env}) + "\n")
    try:
        return dispatch(argv)
    except Refused as error:
        print(f"stand-in docker: {error}", file=sys.stderr)
        return 125


def dispatch(argv: list[str]) -> int:
    if argv[:1] == ["info"] or argv[:2] == ["compose", "version"]:
        if os.environ.get("STANDIN_DOCKER_ENGINE") == "down":
            print("Cannot connect to the Docker daemon (stand-in)", file=sys.stderr)
            return 1
        print("stand-in docker: no engine, services run as host processes")
        return 0
    if argv[:1] == ["inspect"]:
        return inspect(argv[1:])
    if argv[:1] != ["compose"]:
        raise Refused(f"not implemented: {argv}")
    options, rest = {}, argv[1:]
    while rest and rest[0] in ("-f", "-p"):
        options[rest[0]] = rest[1]
        rest = rest[2:]
    if "-f" not in options:
        raise Refused("compose without -f")
    document = interpolate(yaml.safe_load(Path(options["-f"]).read_text()))
    project = options.get("-p", "")
    command, args = rest[0], rest[1:]
    if command == "build":
        return 0
    if not project:
        raise Refused("compose without -p")
    if command == "up":
        return up(document, project, args)
    if command == "ps":
        return ps(project, args)
    if command == "run":
        return run(document, args)
    if command == "down":
        return down(project)
    raise Refused(f"compose {command} not implemented")


def interpolate(value: Any) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$, over the whole file, as compose."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, kind, text = match.groups()
        found = os.environ.get(name, "")
        if not found and kind == "?":
            raise Refused(f"required variable {name} is missing a value: {text}")
        return found or (text if kind == "-" else "")

    return VARIABLE.sub(one, value)


def service(document: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in document["services"]:
        raise Refused(f"no such service: {name}")
    return document["services"][name]


def identity(user: str) -> tuple[int, int]:
    uid, _, gid = user.partition(":")
    if not (uid.isdigit() and gid.isdigit()):
        raise Refused(f"user must be uid:gid here, not {user!r}")
    return int(uid), int(gid)


def container_env(spec: dict[str, Any], uid: int, extra: dict[str, str]) -> dict[str, str]:
    """What a container sees: the image's ENV, HOME, the service's environment; not the caller's."""
    home = pwd.getpwuid(uid).pw_dir
    declared = {key: str(value) for key, value in (spec.get("environment") or {}).items()}
    return {**IMAGE_ENV, "HOME": home, **declared, **extra}


def as_user(uid: int, gid: int) -> dict[str, Any]:
    if os.geteuid() == 0:
        return {"user": uid, "group": gid, "extra_groups": []}
    if (uid, gid) != (os.getuid(), os.getgid()):
        raise Refused("only root can run a service as another user")
    return {}


def containers() -> dict[str, dict[str, Any]]:
    path = HOME / "containers.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save(records: dict[str, dict[str, Any]]) -> None:
    tmp = HOME / "containers.tmp"
    tmp.write_text(json.dumps(records, indent=2))
    tmp.replace(HOME / "containers.json")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()


def up(document: dict[str, Any], project: str, args: list[str]) -> int:
    names = [arg for arg in args if not arg.startswith("-")]
    if "-d" not in args or not names:
        raise Refused("up needs -d and a service (the runtime starts one at a time, detached)")
    records = containers()
    for name in names:
        spec = service(document, name)
        if spec.get("network_mode") != "host" or spec.get("pid") != "host":
            raise Refused(f"{name}: the stand-in runs host processes: host network and pid only")
        uid, gid = identity(spec["user"])
        cid = f"{project}-{name}-1"
        if cid in records:  # --force-recreate: the old container goes
            kill(records[cid]["pid"])
        argv = [*(spec.get("entrypoint") or []), *spec["command"]]
        env = container_env(spec, uid, {})
        with (HOME / f"{cid}.log").open("ab") as log:
            child = subprocess.Popen(
                argv,
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # runc makes a container's process a session leader
                **as_user(uid, gid),
            )
        records[cid] = {"project": project, "service": name, "pid": child.pid}
    save(records)
    return 0


def ps(project: str, args: list[str]) -> int:
    names = [arg for arg in args if not arg.startswith("-")]
    for cid, record in containers().items():
        running = alive(record["pid"]) or "-a" in args
        if record["project"] == project and record["service"] in names and running:
            print(cid)
    return 0


def inspect(args: list[str]) -> int:
    if args[:2] != ["-f", "{{.State.Pid}}"] or len(args) != 3:
        raise Refused(f"inspect {args} not implemented")
    record = containers().get(args[2])
    if record is None:
        print(f"Error: No such object: {args[2]}", file=sys.stderr)
        return 1
    print(record["pid"] if alive(record["pid"]) else 0)
    return 0


def run(document: dict[str, Any], args: list[str]) -> int:
    flags: dict[str, list[str]] = {"--user": [], "--env": []}
    while args and args[0].startswith("-"):
        flag, _, value = args.pop(0).partition("=")
        flag = {"-e": "--env", "-u": "--user"}.get(flag, flag)
        if flag in flags:
            flags[flag].append(value or args.pop(0))
        elif flag not in ("--rm", "--no-deps", "-T"):
            raise Refused(f"run {flag} not implemented")
    name, argv = args[0], args[1:]
    spec = service(document, name)
    uid, gid = identity(flags["--user"][-1] if flags["--user"] else spec["user"])
    extra = {}
    for item in flags["--env"]:
        key, has_value, value = item.partition("=")
        extra[key] = value if has_value else os.environ.get(key, "")
    result = subprocess.run(
        [*(spec.get("entrypoint") or []), *argv],
        env=container_env(spec, uid, extra),
        cwd="/",
        capture_output=True,
        check=False,
        **as_user(uid, gid),
    )
    sys.stdout.buffer.write(result.stdout)
    sys.stderr.buffer.write(result.stderr)
    return result.returncode


def down(project: str) -> int:
    records = containers()
    for cid in [cid for cid, record in records.items() if record["project"] == project]:
        kill(records.pop(cid)["pid"])
    save(records)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
