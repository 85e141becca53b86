"""The Prometheus text exposition format (version 0.0.4), as node_exporter's textfile collector
reads it: HELP and TYPE once per family, no timestamps.

Label values need no escaping: `Families` admits only identifiers (no backslash, quote or
newline), so each family's sample lines come from one format string.
"""

from __future__ import annotations

from collections.abc import Iterable

from nestctl.metrics.family import Family

_COMMON = {0.0: "0", 1.0: "1"}


def _number(value: float) -> str:
    text = _COMMON.get(value)
    if text is not None:
        return text
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for fam in families:
        help_text = fam.help.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {fam.name} {help_text}")
        lines.append(f"# TYPE {fam.name} gauge")
        if not fam.label_names:
            lines.extend(f"{fam.name} {_number(s.value)}" for s in fam.samples)
            continue
        fmt = (fam.name + "{{" + ",".join(f'{k}="{{}}"' for k in fam.label_names) + "}} ").format
        lines.extend(fmt(*s.labels) + _number(s.value) for s in fam.samples)
    return "\n".join(lines) + "\n" if lines else ""
