"""The terminal tables (rich) and the JSON file of one run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.model import Figure, Section


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("s",):
        return f"{value:.3f}"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _versus(figure: Figure) -> str:
    if figure.baseline:
        return "[dim]baseline[/dim]"
    return "\n".join(
        f"{ratio:.2f}x {name}" if ratio is not None else f"- {name}"
        for name, ratio in figure.versus.items()
    )


def section_tables(section: Section) -> list[Table]:
    tables = []
    if section.spreads:
        spreads = Table(title=section.title, title_justify="left", expand=False)
        spreads.add_column("seconds from the SIGKILL to")
        for cut in ("n", "min", "median", "p95", "max"):
            spreads.add_column(cut, justify="right")
        for spread in section.spreads:
            cuts = ("min", "median", "p95", "max")
            cells = [_number(spread.values[c], spread.unit) for c in cuts]
            spreads.add_row(spread.name, str(spread.trials), *(f"{c} s" for c in cells))
        tables.append(spreads)
    if section.figures:
        title = None if section.spreads else section.title
        figures = Table(title=title, title_justify="left")
        figures.add_column("measure", no_wrap=True)
        figures.add_column("value", justify="right", no_wrap=True)
        figures.add_column("unit", no_wrap=True)
        figures.add_column("value / baseline", no_wrap=True)
        figures.add_column("note", style="dim")
        for figure in section.figures:
            figures.add_row(
                figure.name,
                _number(figure.value, figure.unit),
                figure.unit,
                _versus(figure),
                figure.note,
            )
        tables.append(figures)
    return tables


def show(console: Console, header: dict[str, Any], sections: list[Section]) -> None:
    machine = header["machine"]
    console.print(
        f"\n[bold]make bench[/bold]: {machine['cores']} cores, load average "
        f"{machine['loadavg_start'][0]:.2f} at start, {machine['loadavg_end'][0]:.2f} at end "
        f"(other stacks on this machine make figures noisy); "
        f"wall time {header['wall_seconds']:.0f} s"
    )
    for section in sections:
        console.print()
        for table in section_tables(section):
            console.print(table)
        if section.error:
            console.print(f"[red]{section.title}: {section.error}[/red]")


def write(path: Path, header: dict[str, Any], sections: list[Section]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = header | {"sections": {s.key: asdict(s) for s in sections}}
    path.write_text(json.dumps(document, indent=2) + "\n")
