"""Benchmark ratio families: the hook `nestctl bench` results feed (issue 12).

Input: ``{"ratios": [{"vmid": 100 | "id": "qemu/100", "layer": "L2", "bench": "cpu",
"ratio": 0.94}, ...]}`` -- nested speed over the speed one layer down (1 = no overhead). A ratio
that is null or not a number was not measured: no series, and a failed probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nestctl.metrics.family import Families, as_value, node_id, vm_id


def bench_families(fam: Families, results: Mapping[str, Any]) -> None:
    ratios = results.get("ratios")
    for item in ratios if isinstance(ratios, list) else []:
        if not isinstance(item, Mapping):
            continue
        target = _target(item)
        layer, bench = item.get("layer"), item.get("bench")
        if target is None or not isinstance(layer, str) or not isinstance(bench, str):
            continue
        ratio = as_value(item.get("ratio"))
        if ratio is None or isinstance(item.get("ratio"), bool) or ratio < 0:
            fam.failed(target, "bench_ratio")
            continue
        fam.add("nestctl_bench_ratio", ratio, id=target, layer=layer, bench=bench)


def _target(item: Mapping[str, Any]) -> str | None:
    """`qemu/<vmid>` or `node/<name>`, rebuilt from its parts (never copied as given)."""
    given = item.get("id")
    if isinstance(given, str):
        kind, _, rest = given.partition("/")
        if kind == "qemu" and rest.isascii() and rest.isdigit():
            return vm_id(int(rest))
        return node_id(rest) if kind == "node" else None
    return vm_id(item.get("vmid"))
