"""The two time-series charts, with the cluster's events marked on the same time axis.

Altair ships with Streamlit. The x axis always spans the same window ending now, so the charts
scroll steadily instead of rescaling at every refresh.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from dashboard.snapshot import WINDOW_SECONDS

#: Okabe and Ito's colour-blind-safe palette (Color Universal Design, 2008): colours that viewers
#: with any common colour-vision deficiency still tell apart. The charts use no others.
OKABE_ITO = BLACK, ORANGE, SKY, GREEN, BLUE, VERMILION, PURPLE = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
SOLID, DASHED, DOTTED, DASH_DOT = [1, 0], [8, 4], [2, 3], [8, 3, 2, 3]
#: Which events are marked, each in its own colour and dash: no two share both, and those seen
#: together (a crash's four; a fault's loss and repair) differ in both. Red and dark red, once
#: failover-started and writer-crashed, looked alike to a colour-blind viewer.
MARKED: dict[str, tuple[str, list[int]]] = {
    "writer-crashed": (BLACK, DASHED),
    "writer-hung": (ORANGE, DASHED),
    "reader-lagging": (PURPLE, DOTTED),
    "failover-started": (VERMILION, SOLID),
    "failover-completed": (GREEN, DASH_DOT),
    "reader-rejoined": (SKY, DOTTED),
    "proxy-restarted": (BLUE, DASH_DOT),
    "consumer-crashed": (ORANGE, DOTTED),
    "secret-rotated": (BLUE, DOTTED),
    # what the control plane noticed and did about a fault nobody announced
    "fault": (BLACK, SOLID),
    "writer-lost": (VERMILION, DASHED),
    "writer-restarted": (GREEN, SOLID),
    "reader-lost": (PURPLE, DASHED),
    "service-lost": (ORANGE, DASH_DOT),
    "service-restarted": (SKY, SOLID),
}
#: Fixed colours per series, so "committed" never looks like "accepted".
SERIES = {
    "visible": BLUE,
    "in flight": ORANGE,
    "DLQ": VERMILION,
    "accepted": BLUE,
    "committed": GREEN,
    "errors": VERMILION,
}
HEIGHT = 280  # the whole chart, legends too (as Streamlit sizes it)


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
            # at least 0 to 5: an idle stack's zeros drew a lone "0.000000"
            y=alt.Y(
                f"{measure}:Q",
                title=measure,
                scale=alt.Scale(domain=alt.DomainUnionWith(unionWith=[0, 5])),
                axis=alt.Axis(tickMinStep=1),
            ),
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
        .mark_rule(strokeWidth=2)
        .encode(
            x=x,
            # One field, one title: Vega-Lite draws colour and dash as one legend.
            stroke=alt.Stroke(
                "event:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=[MARKED[kind][0] for kind in kinds]),
                legend=alt.Legend(orient="bottom", columns=2, symbolType="stroke", symbolSize=500),
            ),
            strokeDash=alt.StrokeDash(
                "event:N",
                title=None,
                scale=alt.Scale(domain=kinds, range=[MARKED[kind][1] for kind in kinds]),
                legend=alt.Legend(orient="bottom", columns=2, symbolType="stroke", symbolSize=500),
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
            .encode(x=x, y=alt.value(0), text="fault:N", color=alt.value(MARKED["fault"][0]))
        )
    return alt.layer(*layers).resolve_scale(color="independent").properties(height=HEIGHT)


def _iso(epoch: float) -> str:
    """A time domain as ISO strings: Vega-Lite, as Streamlit embeds it, ignores epoch numbers."""
    return pd.Timestamp(epoch, unit="s", tz="UTC").isoformat()
