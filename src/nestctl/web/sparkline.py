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


#: rrddata timeframes a chart offers, and how each labels its time axis.
TIMEFRAMES = {"hour": "%H:%M", "day": "%H:%M", "week": "%a %d"}


def _label(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.0f}%"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"


def chart(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    unit: str = "%",
    top: float = 1.0,
    timeframe: str = "hour",
    width: int = 340,
    height: int = 150,
) -> str:
    """A graph readable on a phone: y axis with 0, half and top, time axis with the first and
    last sample's time, grid lines, and the current value in words. `unit` "%" draws fractions
    (0..1) as percent; anything else draws plain numbers (a load average) up to the peak."""
    import time  # noqa: PLC0415 - only when drawing

    left, right, top_pad, bottom = 40, 8, 22, 20
    w, h = width - left - right, height - top_pad - bottom
    peak = max(top, *(v for _, v in points)) if points else top
    peak = peak or 1.0
    fmt = TIMEFRAMES.get(timeframe, "%H:%M")
    now = _label(points[-1][1], unit) if points else "no data"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{title}: now {now}, {len(points)} samples over the last {timeframe}">',
        f'<text x="{left}" y="14" class="now">{title}: {now}</text>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top_pad + h - frac * h
        tick = _label(frac * peak, unit)
        parts.append(
            f'<line class="axis" x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    if len(points) >= 2:
        t0, t1 = points[0][0], points[-1][0]
        span = (t1 - t0) or 1.0
        coords = " ".join(
            f"{left + (t - t0) / span * w:.1f},{top_pad + h - min(v, peak) / peak * h:.1f}"
            for t, v in points
        )
        parts.append(
            f'<polyline fill="none" stroke="currentColor" stroke-width="2" points="{coords}"/>'
        )
        for x, t, anchor in ((left, t0, "start"), (left + w, t1, "end")):
            stamp = time.strftime(fmt, time.localtime(t))
            parts.append(f'<text x="{x}" y="{height - 4}" text-anchor="{anchor}">{stamp}</text>')
    else:
        parts.append(f'<text x="{left + 8}" y="{top_pad + h / 2:.1f}">no samples yet</text>')
    parts.append("</svg>")
    return "".join(parts)


def guest_charts(rows: Any, timeframe: str = "hour") -> list[str]:
    """CPU and memory charts of a VM's or container's rrddata rows."""
    return [
        chart(series(rows, "cpu"), title="CPU", timeframe=timeframe),
        chart(series(rows, "mem", scale_by="maxmem"), title="Memory", timeframe=timeframe),
    ]
