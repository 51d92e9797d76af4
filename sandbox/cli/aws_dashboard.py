"""`sandbox dashboard --target aws`: the read-only page on a deployed stack, in the foreground.

Unlike the local dashboard it is not a stack component (there is no local stack to belong to):
it lives as long as the command, and Ctrl-C stops both. The stack is read once before Streamlit
starts, so a stack that cannot be read (no credentials, wrong name or region) fails in one line
instead of as a page that only ever shows an error.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable

from sandbox.drills.targets.aws import AwsTarget
from sandbox.spec.errors import StackError

#: The local dashboard's is 18501; this one may run beside it.
DEFAULT_PORT = 18502
STOP_SECONDS = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(stack: str, region: str, port: int, say: Callable[[str], None] | None = None) -> int:
    """Check the stack, then run the page until Ctrl-C (or until Streamlit exits); its exit code."""
    from sandbox.standins.dashboard import REGION_ENV, STACK_ENV, STREAMLIT_ENV, streamlit_argv

    say = say or _say
    target = AwsTarget(stack, region)
    _ = target.outputs  # one CloudFormation read: the failure, if any, as one line
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise StackError(f"port {port} is in use: pass --port")
    say(f"dashboard for {target.name} (read-only): http://127.0.0.1:{port}  (Ctrl-C stops it)")
    env = os.environ | STREAMLIT_ENV | {STACK_ENV: stack, REGION_ENV: region}
    child = subprocess.Popen(streamlit_argv("aws_app.py", port), env=env)
    # Ctrl-C and `kill` alike, even where SIGINT came in ignored (a background job of a shell
    # without job control): Streamlit installs its own SIGINT handler and stops regardless, so
    # this process must stop with it, not outlive it and miss the last line.
    previous = {number: signal.signal(number, _interrupt) for number in STOP_SIGNALS}
    try:
        code = child.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _stop(child)
    say("dashboard stopped")  # Streamlit has ended: nothing of it can follow this line
    return code


def _say(line: str) -> None:
    """Each line as it happens: Streamlit writes to the same stdout, and a pipe's buffer would
    put our lines after all of its own."""
    print(line, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(child: subprocess.Popen[bytes]) -> None:
    """End Streamlit (a terminal's Ctrl-C reached it too; a `kill` of ours did not)."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
