"""The two time-series charts, with the cluster's events marked on the same time axis.

Altair ships with Streamlit. The x axis always spans the same window ending now, so the charts
scroll steadily instead of rescaling at every refresh.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from dashboard.snapshot import WINDOW_SECONDS

# Which events are marked, and in which colour: the failover's start and end above all.
MARKED = {
    "failover-started": "#d62728",
    "writer-crashed": "#8c1c13",
    "writer-hung": "#ff7f0e",
    "reader-lagging": "#bcbd22",
    "failover-completed": "#2ca02c",
    "reader-rejoined": "#17becf",
    "proxy-restarted": "#9467bd",
    "consumer-crashed": "#8c564b",
    # what the control plane noticed and did about a fault nobody announced
    "fault": "#000000",
    "writer-lost": "#e377c2",
    "writer-restarted": "#2ca02c",
    "reader-lost": "#e377c2",
    "service-lost": "#e377c2",
    "service-restarted": "#17becf",
}
# Fixed colours per series, so "committed" never looks like "accepted".
SERIES = {
    "visible": "#ff7f0e",
    "in flight": "#1f77b4",
    "DLQ": "#d62728",
    "accepted": "#1f77b4",
    "committed": "#2ca02c",
    "errors": "#d62728",
}
HEIGHT = 260


def depth(samples: list[dict[str, Any]], events: list[dict[str, Any]], now: float) -> alt.Chart:
    """Queue (visible, in flight) and DLQ depth."""
    frame = pd.DataFrame(samples, columns=["time", "visible", "in flight", "DLQ"])
    long = frame.melt("time", var_name="series", value_name="messages")
    return _timeline(long, "messages", ["visible", "in flight", "DLQ"], events, now)


def throughput(
    traffic: dict[str, Any] | None,
    committed: list[list[int]] | None,
    events: list[dict[str, Any]],
    now: float,
) -> alt.Chart:
    """Accepted, errored and committed orders per second, over complete seconds only."""
    seconds = range(int(now) - WINDOW_SECONDS, int(now))
    answered = (traffic or {}).get("per_second", {})
    commits = dict(map(tuple, committed or []))
    rows = []
    for second in seconds:
        accepted, errors = answered.get(str(second), [0, 0])
        rows += [
            {"time": second, "series": "accepted", "per second": accepted},
            {"time": second, "series": "errors", "per second": errors},
        ]
        if committed is not None:  # None: the writer did not answer; not the same as 0
            committed_now = commits.get(second, 0)
            rows.append({"time": second, "series": "committed", "per second": committed_now})
    series = ["accepted", "committed", "errors"]
    return _timeline(pd.DataFrame(rows), "per second", series, events, now)


def _timeline(
    frame: pd.DataFrame,
    measure: str,
    series: list[str],
    events: list[dict[str, Any]],
    now: float,
) -> alt.Chart:
    frame = frame.assign(time=pd.to_datetime(frame["time"], unit="s", utc=True))
    x = alt.X(
        "time:T",
        title=None,
        scale=alt.Scale(domain=[_iso(now - WINDOW_SECONDS), _iso(now)]),
        axis=alt.Axis(format="%H:%M:%S"),
    )
    lines = (
        alt.Chart(frame)
        .mark_line(interpolate="step-after")
        .encode(
            x=x,
            y=alt.Y(f"{measure}:Q", title=measure),
            color=alt.Color(
                "series:N",
                title=None,
                scale=alt.Scale(domain=series, range=[SERIES[name] for name in series]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=["series:N", f"{measure}:Q", alt.Tooltip("time:T", format="%H:%M:%S")],
        )
    )
    marked = [e for e in events if e["event"] in MARKED]
    if not marked:
        return lines.properties(height=HEIGHT)
    kinds = list(dict.fromkeys(e["event"] for e in marked))
    rules = (
        alt.Chart(
            pd.DataFrame(
                {
                    "time": pd.to_datetime([e["epoch"] for e in marked], unit="s", utc=True),
                    "event": [e["event"] for e in marked],
                    "message": [e["message"] for e in marked],
                }
            )
        )
        .mark_rule(strokeDash=[4, 3], strokeWidth=2)
        .encode(
            x=x,
            stroke=alt.Stroke(
                "event:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=[MARKED[kind] for kind in kinds]),
                legend=alt.Legend(orient="bottom", columns=3),
            ),
            tooltip=["message:N", alt.Tooltip("time:T", format="%H:%M:%S.%L")],
        )
    )
    layers = [lines, rules]
    named = [e for e in marked if e["event"] == "fault" and e.get("fault")]
    if named:  # a fault nobody announced (`sandbox fault`, a chaos run's): its name on its rule
        labels = pd.DataFrame(
            {
                "time": pd.to_datetime([e["epoch"] for e in named], unit="s", utc=True),
                "fault": [e["fault"] for e in named],
            }
        )
        layers.append(
            alt.Chart(labels)
            .mark_text(align="left", baseline="top", dx=3, dy=2, angle=0, fontSize=10)
            .encode(x=x, y=alt.value(0), text="fault:N", color=alt.value(MARKED["fault"]))
        )
    return alt.layer(*layers).resolve_scale(color="independent").properties(height=HEIGHT)


def _iso(epoch: float) -> str:
    """A time domain as ISO strings: Vega-Lite, as Streamlit embeds it, ignores epoch numbers."""
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()
