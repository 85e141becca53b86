"""Human output for `nestctl bench` and `bench compare` (rich; never imported for --json)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nestctl.bench.plot import VERDICT_STYLE, terminal_chart
from nestctl.bench.results import number, ok_value


def _onoff(value: object) -> str:
    return "unknown" if value is None else ("on" if value else "OFF")


def _setting(item: object) -> str:
    if not isinstance(item, dict):
        return "?"
    return f"{_onoff(item.get('value'))} ({item.get('source')})"


def where_rows(where: dict[str, Any]) -> list[tuple[str, str]]:
    raw = where.get("steal")
    steal: dict[str, Any] = raw if isinstance(raw, dict) else {}
    chain = where.get("chain") if isinstance(where.get("chain"), dict) else None
    rows = [
        ("level", str(where.get("level"))),
        ("hypervisor", f"{where.get('hypervisor')} (accel {where.get('accel')})"),
        ("CPU", f"{where.get('cpu_model')}, {where.get('cpus')} vCPU(s)"),
        ("EPT/NPT for guests", _setting(where.get("ept_npt"))),
        ("shadow VMCS", _setting(where.get("shadow_vmcs"))),
        ("clock source", f"{where.get('clocksource')} (exits: {where.get('clocksource_exits')})"),
        ("steal during run", f"{steal.get('percent')}%"),
        ("others' CPU use", f"{(where.get('contention') or {}).get('percent')}%"),
        ("TSC", f"{where.get('tsc_hz') or 'unknown'} Hz"),
    ]
    if chain:
        rows.insert(0, ("VM", f"{chain.get('node')}/{chain.get('vmid')} -cpu {chain.get('cpu')}"))
    return rows


def _kv_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for k, v in rows:
        table.add_row(escape(k), escape(v))
    return table


def render_run(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    console.print(f"[bold]nestctl bench[/] ({doc.get('mode')}, {doc.get('duration_s')} s)")
    console.print(_kv_table(where_rows(doc["where"])))
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for col in ("workload", "median", "spread", "unit", "cycles", "note"):
        table.add_column(col, no_wrap=col != "note", overflow="fold")
    for r in doc["results"]:
        # A guest wrote this file: show what is well-formed, never trust a type.
        measured = ok_value(r)
        name = escape(str(r.get("name")))
        if measured is None:
            reason = str(r.get("reason") or "not measurable")
            table.add_row(name, "-", "-", "", "", f"[yellow]{escape(reason)}[/]")
            continue
        median, spread = measured
        cycles = number(r.get("cycles"))
        table.add_row(
            name,
            f"{median:,.1f}",
            f"±{spread / median * 100:.1f}%",
            escape(str(r.get("unit") or "")),
            f"{cycles:,.0f}" if cycles is not None else "",
            escape(str(r.get("note") or "")),
        )
    console.print()
    console.print(table)


def render_compare(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    for i, f in enumerate(report["files"]):
        flags = " [magenta]software emulation (TCG)[/]" if f["emulation"] else ""
        console.print(
            f"[bold]{i + 1}.[/] {escape(f['label'])}: {escape(str(f['path']))}, "
            f"accel {f['accel']}, clock {f['clocksource']}, EPT/NPT {_onoff(f['ept_npt'])}{flags}"
        )
    console.print()
    console.print(terminal_chart(report))
    console.print()
    geo = report["geomean"]
    for group in ("no_exit", "exit_heavy", "kernel", "io"):
        values = ", ".join("n/a" if v is None else f"{v:.2f}x" for v in geo[group][1:])
        console.print(f"geometric mean, {group.replace('_', '-')}: {values}")
    # One line per cause, naming the workloads it explains (emulation would repeat on each).
    by_cause: dict[tuple[str, str], list[str]] = {}
    for w in report["workloads"]:
        if w["verdict"] in (None, "in line", "unknown"):
            continue
        name = w["name"]
        if w["expected"] and w["verdict"] != "emulation":
            name += f" {w['ratios'][-1]:.2f}x vs {w['expected'][0]:g}-{w['expected'][1]:g}x"
        by_cause.setdefault((w["verdict"], w["cause"] or "no setting explains it"), []).append(name)
    if by_cause:
        console.print()
    for (verdict, cause), names in by_cause.items():
        style = VERDICT_STYLE.get(verdict, "")
        console.print(f"[{style}]{verdict}[/]: {escape(', '.join(names))}")
        console.print(f"    [dim]{escape(cause)}[/]")
