"""A picture of a comparison: PNG/SVG with matplotlib (optional), else bars in the terminal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

VERDICT_STYLE = {
    "in line": "green",
    "better": "cyan",
    "worse": "red",
    "emulation": "magenta",
    "unknown": "dim",
}
BAR_WIDTH = 24


class PlotUnavailableError(Exception):
    """matplotlib is not installed; the message names the package that provides it."""


def _label(name: str, unit: object) -> str:
    return f"{name} ({unit})" if unit else name


def plot_file(report: dict[str, Any], path: str) -> None:
    """Write a horizontal bar chart of the ratios (log scale) to a .png or .svg file."""
    try:
        import matplotlib  # noqa: PLC0415 - an optional dependency, imported when asked

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        raise PlotUnavailableError(
            "plotting needs matplotlib: apt install python3-matplotlib "
            "(or pip install 'nestctl[plot]'); without it the terminal chart is printed"
        ) from exc
    files = report["files"][1:]
    rows = [w for w in report["workloads"] if any(r is not None for r in w["ratios"][1:])]
    fig, ax = plt.subplots(figsize=(9, 0.5 + 0.45 * max(len(rows), 1) * max(len(files), 1)))
    height = 0.8 / max(len(files), 1)
    for k, f in enumerate(files, start=1):
        ys, xs, lo, hi = [], [], [], []
        for y, w in enumerate(rows):
            r = w["ratios"][k]
            if r is None:
                continue
            iv = w["interval"][k] or [r, r]
            ys.append(y + (k - 1) * height)
            xs.append(r)
            lo.append(max(r - iv[0], 0.0))
            hi.append(max(iv[1] - r, 0.0))
        # Bars start at 1 (no difference) and grow right for slower, left for faster.
        widths = [x - 1.0 for x in xs]
        ax.barh(ys, widths, height=height, xerr=[lo, hi], label=f["label"], left=1.0)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks([y + height * (len(files) - 1) / 2 for y in range(len(rows))])
    ax.set_yticklabels([w["name"] for w in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"ratio to {report['files'][0]['label']} (log scale; 1 = same)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bar(ratio: float, scale: float) -> str:
    """Bars grow with log2(ratio): 1x is empty, each doubling the same step."""
    if ratio <= 0:
        return ""
    cells = round(abs(math.log2(ratio)) / scale * BAR_WIDTH)
    return ("◀" if ratio < 1 else "") + "█" * min(cells, BAR_WIDTH)


def terminal_chart(report: dict[str, Any]) -> Table:
    """A rich table: per workload and file the ratio, a log-scale bar, and the verdict colour."""
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    files = report["files"]
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("workload", style="bold", no_wrap=True)
    every = [r for w in report["workloads"] for r in w["ratios"][1:] if r]
    scale = max([abs(math.log2(r)) for r in every] + [1.0])
    for f in files[1:]:
        table.add_column(escape(f["label"]), no_wrap=True)
    for w in report["workloads"]:
        cells = []
        for k in range(1, len(files)):
            r = w["ratios"][k]
            if r is None:
                cells.append("[dim]n/a[/]")
                continue
            style = VERDICT_STYLE.get(w["verdicts"][k] or "unknown", "")
            iv = w["interval"][k]
            pm = f"±{(iv[1] - iv[0]) / 2 / r * 100:3.0f}%" if iv and r else "     "
            cells.append(f"[{style}]{r:7.2f}x {pm} {_bar(r, scale)}[/]")
        table.add_row(escape(_label(w["name"], None)), *cells)
    return table
