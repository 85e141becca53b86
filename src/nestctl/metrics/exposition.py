"""The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
reads it: HELP and TYPE once per family, no timestamps."""

from __future__ import annotations

from collections.abc import Iterable

from nestctl.metrics.family import Family


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in families:
        help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {fam.name} {help_text}")
        lines.append(f"# TYPE {fam.name} gauge")
        for sample in fam.samples:
            pairs = ",".join(
                f'{k}="{_escape(v)}"' for k, v in zip(fam.label_names, sample.labels, strict=True)
            )
            labels = "{" + pairs + "}" if pairs else ""
            lines.append(f"{fam.name}{labels} {_number(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""
