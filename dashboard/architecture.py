"""The architecture as a picture (Graphviz DOT, which Streamlit renders without extra installs):
client -> gateway -> producer -> queue (+DLQ) -> consumer -> proxy -> writer / reader, each box
coloured by its component's health, the nodes labelled with their current role, and the control
plane watching the nodes, labelled with what it is doing. Where the orders are is on the boxes:
visible and in flight on the queue and the DLQ, and on each node how many it committed.

It is drawn as a snake in two rows: the write into the queue left to right, then the commit out of
it right to left from under the queue, the control plane above the nodes it watches (a third row
pushed the charts off a projector's first screen). In one row of ten boxes the page's width
shrank the text to 7 px at 1280x720, too small for a projector; the browser test measures it
at that size."""

from __future__ import annotations

from dashboard.snapshot import Snapshot

UP, DOWN, IDLE = "#d8f0dc", "#f8d0d0", "#eeeeee"
BOX_FONT, ARROW_FONT = 18, 15  # in the picture's units; the page's width scales them

#: Streamlit's stylesheet draws every SVG text at 9.6 px, whatever size Graphviz laid the boxes
#: out for: 8 px on the screen at 1280x720. The page draws the picture's text at its own sizes.
STYLE = (
    "<style>"
    f"[data-testid='stGraphVizChart'] g.node text {{font-size: {BOX_FONT}px !important;}}"
    f"[data-testid='stGraphVizChart'] g.edge text {{font-size: {ARROW_FONT}px !important;}}"
    "</style>"
)


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
        label = f"{name} {role}\\n{detail}{lag}{committed}"  # three lines: a lower picture
        return box(name, label, bool(node.get("up")), "cylinder")

    watching = snapshot.healthy("control-plane")
    plane = f"control plane\\n{(status.get('control_plane') or {}).get('phase', '?')}"
    client = f"client\\n{traffic['rate']:g}/s" if traffic.get("running") else "client\\nidle"
    aws, api = snapshot.healthy("aws"), snapshot.healthy("api")
    lines = [
        "digraph {",
        '  rankdir=TB; bgcolor="transparent"; nodesep=0.25; ranksep=0.3; newrank=true;',
        f'  node [style="rounded,filled", fontname="Helvetica", fontsize={BOX_FONT}, margin=0.08];',
        f'  edge [fontname="Helvetica", fontsize={ARROW_FONT}, color="#555555"];',
        box("client", client, True if traffic.get("running") else None),  # idle is not down
        box("gateway", "gateway\\nAPI Gateway\\n+ Cognito", api),
        box("producer", "producer\\nfunction", api),
        box("queue", f"queue\\nSQS FIFO\\n{depth('queue')}", aws, "cylinder"),
        box("dlq", f"DLQ\\n{depth('dlq')}", aws, "cylinder"),
        box("consumer", "consumer\\nfunction", snapshot.healthy("consumer")),
        box("proxy", "proxy\\nRDS Proxy\\n(PgBouncer)", snapshot.healthy("proxy")),
        *(database(name) for name in sorted(nodes)),
        box("plane", plane if watching else "control plane", watching),
        '  client -> gateway [label="POST /orders"];',
        "  gateway -> producer -> queue;",
        '  queue -> dlq [style=dashed, label="max\\nreceives"];',
        "  queue -> consumer;",
        # The second row runs right to left, from under the queue: each edge is written
        # backwards (dir=back) so that Graphviz puts its head on the left.
        "  proxy -> consumer [dir=back];",
        *(
            [f'  {writer} -> proxy [dir=back, label="writes", penwidth=2];']
            if writer in nodes
            else []
        ),
        *(
            f'  {r} -> {writer} [dir=back, label="replication", style=bold];'
            for r in readers
            if r in nodes
        ),
        # The control plane sits first in the top row, above the nodes it watches (two rows,
        # not three: the picture leaves the charts and the scoreboard room on the first screen).
        "  plane -> client [style=invis];",
        *(f"  plane -> {name} [style=dotted, dir=none];" for name in sorted(nodes)),
        "  { rank=same; plane; client; gateway; producer; queue; dlq; }",
        f"  {{ rank=same; consumer; proxy; {' '.join(f'{n};' for n in sorted(nodes))} }}",
        "}",
    ]
    return "\n".join(lines)
