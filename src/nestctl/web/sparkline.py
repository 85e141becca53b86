"""A small inline SVG history graph from `rrddata` (no chart library, no script)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nestctl.web.snapshot import _num


def series(rows: Any, key: str, *, scale_by: str | None = None) -> list[tuple[float, float]]:
    """(time, value) points of one rrd column, in time order. rrddata leaves out missing samples,
    and a sample may lack the column: both are simply gaps, never zeros."""
    points: list[tuple[float, float]] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        t, v = _num(row.get("time")), _num(row.get(key))
        if t is None or v is None:
            continue
        if scale_by is not None:
            d = _num(row.get(scale_by))
            if not d:
                continue
            v = v / d
        points.append((t, v))
    points.sort()
    return points


def svg(
    points: Sequence[tuple[float, float]], *, width: int = 120, height: int = 28, top: float = 1.0
) -> str:
    """A polyline of values in [0, top], scaled to the box. Empty points draw a flat baseline."""
    if len(points) < 2:
        return (
            f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" aria-label="no history">'
            f'<line x1="0" y1="{height - 1}" x2="{width}" y2="{height - 1}" stroke="currentColor" '
            f'stroke-opacity=".3"/></svg>'
        )
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0) or 1.0
    peak = max(top, *(v for _, v in points)) or 1.0
    coords = " ".join(
        f"{(t - t0) / span * width:.1f},{height - 1 - (min(v, peak) / peak) * (height - 2):.1f}"
        for t, v in points
    )
    last = points[-1][1]
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="last {len(points)} samples, now {last * 100 / peak:.0f}%">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{coords}"/></svg>'
    )
