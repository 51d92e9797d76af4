"""The architecture as a picture (Graphviz DOT, which Streamlit renders without extra installs):
client -> gateway -> producer -> queue (+DLQ) -> consumer -> proxy -> writer / reader, each box
coloured by its component's health, the nodes labelled with their current role, and the control
plane watching the nodes, labelled with what it is doing. Where the orders are is on the boxes:
visible and in flight on the queue and the DLQ, and on each node how many it committed."""

from __future__ import annotations

from dashboard.snapshot import Snapshot

UP, DOWN, IDLE = "#d8f0dc", "#f8d0d0", "#eeeeee"


def dot(snapshot: Snapshot) -> str:
    status = snapshot.status or {}
    traffic = snapshot.traffic or {}
    writer = status.get("writer", "?")
    readers = status.get("readers", [])
    nodes = status.get("nodes", {})

    def box(name: str, label: str, ok: bool | None, shape: str = "box") -> str:
        colour = IDLE if ok is None else UP if ok else DOWN
        text = label if ok is not False else f"{label}\\nDOWN"
        return f'  {name} [label="{text}", shape={shape}, fillcolor="{colour}"];'

    def depth(queue: str) -> str:
        found = snapshot.depth(queue)
        if found is None:
            return "depth unknown"
        return f"{found['visible']} visible, {found['in_flight']} in flight"

    def database(name: str) -> str:
        node = nodes.get(name, {})
        role = node.get("role", "?")
        detail = node.get("state", "") if role == "reader" else status.get("replication", "")
        lag = f", lag {node['lag_bytes']} B" if "lag_bytes" in node else ""
        committed = f"\\n{node['committed']:,} committed here" if "committed" in node else ""
        label = f"{name}\\n{role}\\n{detail}{lag}{committed}"
        return box(name, label, bool(node.get("up")), "cylinder")

    watching = snapshot.healthy("control-plane")
    plane = f"control plane\\n{(status.get('control_plane') or {}).get('phase', '?')}"
    client = f"client\\n{traffic['rate']:g}/s" if traffic.get("running") else "client\\nidle"
    aws, api = snapshot.healthy("aws"), snapshot.healthy("api")
    lines = [
        "digraph {",
        '  rankdir=LR; bgcolor="transparent"; nodesep=0.15; ranksep=0.25;',
        '  node [style="rounded,filled", fontname="Helvetica", fontsize=16, margin="0.1,0.05"];',
        '  edge [fontname="Helvetica", fontsize=12, color="#555555"];',
        box("client", client, True if traffic.get("running") else None),  # idle is not down
        box("gateway", "gateway\\nAPI Gateway + Cognito", api),
        box("producer", "producer\\nfunction", api),
        box("queue", f"queue (SQS FIFO)\\n{depth('queue')}", aws, "cylinder"),
        box("dlq", f"DLQ\\n{depth('dlq')}", aws, "cylinder"),
        box("consumer", "consumer\\nfunction", snapshot.healthy("consumer")),
        box("proxy", "proxy\\nRDS Proxy (PgBouncer)", snapshot.healthy("proxy")),
        *(database(name) for name in sorted(nodes)),
        box("plane", plane if watching else "control plane", watching),
        '  client -> gateway [label="POST /orders"];',
        "  gateway -> producer -> queue;",
        '  queue -> dlq [style=dashed, label="after max receives"];',
        "  queue -> consumer -> proxy;",
        *([f'  proxy -> {writer} [label="writes", penwidth=2];'] if writer in nodes else []),
        *(f'  {writer} -> {r} [label="replication", style=bold];' for r in readers if r in nodes),
        *(f"  plane -> {name} [style=dotted, arrowhead=none];" for name in sorted(nodes)),
        "}",
    ]
    return "\n".join(lines)
