"""One snapshot of the running stack, for `sandbox status`, the dashboard and the tests."""

from __future__ import annotations

from typing import Any

from sandbox import stack
from sandbox.platform import runtime
from sandbox.platform.state import StackState
from sandbox.standins import cloudwatch, control_plane
from sandbox.standins.aurora import database, events
from sandbox.standins.dashboard import dashboard_url


def endpoints(state: StackState) -> dict[str, str]:
    return {
        "aws": state.aws_endpoint,
        "n1": f"{state.host('n1')}:{state.ports['n1']}",
        "n2": f"{state.host('n2')}:{state.ports['n2']}",
        "proxy": f"{state.host('proxy')}:{state.ports['proxy']}",
        "api": state.api_url,
        "consumer": state.queue_url.rsplit("/", 1)[-1],
        "control-plane": str(control_plane.status_path(state)),
        "dashboard": dashboard_url(state),
    }


def collect(state: StackState) -> dict[str, Any]:
    healthy = stack.health(state)
    where = endpoints(state)
    nodes = database.replication_status(state)
    try:
        committed: dict[str, int] | None = database.committed_by_node(state)
    except Exception:  # no writer answering: the counts are unknown, not zero
        committed = None
    for name, node in nodes.items():
        node["port"] = state.nodes[name].port
        if committed is not None:
            node["committed"] = committed.get(name, 0)
    try:
        sqs = stack.localstack.client(state, "sqs")
        queues = {
            "queue": vars(stack.depth(sqs, state.queue_url)),
            "dlq": vars(stack.depth(sqs, state.dlq_url)),
        }
    except Exception:
        queues = {}
    try:
        alarm_states = cloudwatch.states(stack.localstack.client(state, "cloudwatch"), state)
    except Exception:
        alarm_states = {}
    return {
        "components": [
            {
                "name": name,
                "healthy": ok,
                "pid": state.pids.get(name),
                "endpoint": where[name],
                "memory_mib": round(runtime.of(state).memory_mib(state, name), 1),
            }
            for name, ok in healthy.items()
        ],
        "writer": state.writer.name,
        "readers": [node.name for node in state.readers],
        "replication": state.replication,
        "consumer": state.consumer,
        "nodes": nodes,
        "queues": queues,
        "alarms": alarm_states,
        "control_plane": control_plane.status(state),
        "control_plane_healthy": healthy.get("control-plane", False),
        "restored_with_localstack": restored_so_far(state),
    }


def restored_so_far(state: StackState) -> int:
    """How many acknowledged orders the SQS stand-in's journal put back into a LocalStack that
    had died with them queued (or parked), in this stack's life."""
    return sum(
        event.get("to_queue", 0) + event.get("to_dlq", 0)
        for event in events.read(state)
        if event["event"] == "queue-restored"
    )
