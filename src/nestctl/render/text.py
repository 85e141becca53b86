"""Human output with rich: a one-line verdict, the facts, then each finding with its fix.

rich is imported here only, so JSON runs never pay for it. Colour only on a terminal (rich decides;
NO_COLOR is honoured).
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nestctl.findings import Report, Severity, Verdict

_VERDICT_STYLE = {
    Verdict.READY: ("bold green", "READY"),
    Verdict.NOT_READY: ("bold red", "NOT READY"),
    Verdict.UNKNOWN: ("bold yellow", "UNKNOWN"),
}
_SEVERITY_STYLE = {
    Severity.ERROR: ("red", "✗ error"),
    Severity.WARNING: ("yellow", "! warning"),
    Severity.INFO: ("cyan", "• info"),
}


def render_text(report: Report, out: TextIO | None = None) -> None:
    console = Console(file=out, highlight=False, soft_wrap=False)
    verdict = report.final_verdict
    style, label = _VERDICT_STYLE[verdict]
    summary = report.summaries.get(verdict, "")
    line = f"[{style}]{label}[/]  {escape(report.title)}"
    if summary:
        line += f": {escape(summary)}"
    console.print(line)
    for section in report.sections:
        table = Table(title=None, show_header=False, box=None, padding=(0, 1), pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in section.rows:
            table.add_row(escape(key), escape(value))
        console.print()
        console.print(f"[bold underline]{escape(section.title)}[/]")
        console.print(table)
    if report.findings:
        console.print()
        console.print("[bold underline]Findings[/]")
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    for f in sorted(report.findings, key=lambda f: order[f.severity]):
        fstyle, flabel = _SEVERITY_STYLE[f.severity]
        console.print(f"[{fstyle}]{flabel}[/] [dim]{escape(f.code)}[/]  {escape(f.message)}")
        if f.fix:
            fix_lines = f.fix.splitlines() or [""]
            console.print(f"    [bold]fix:[/] {escape(fix_lines[0])}")
            for extra in fix_lines[1:]:
                console.print(f"         {escape(extra)}")
