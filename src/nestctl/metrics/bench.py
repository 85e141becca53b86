"""Benchmark ratio families: where `nestctl bench` results (issue 12) enter the metrics.

`nestctl.bench.feed.metric_samples(docs)` yields ``({"id": ..., "bench": ...}, ratio)`` pairs:
nested speed over the shallowest measured layer (1 = no overhead). Its ids are "<node>/<vmid>"
for a VM measured from its host, or the host's name; here they become pve-exporter's
`qemu/<vmid>` and `node/<name>`. Until the bench package is installed, there are no samples.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nestctl.metrics.family import Families, as_value, is_label_value, node_id, vm_id
from nestctl.parse import is_ascii_digits

if TYPE_CHECKING:
    from nestctl.machine import Host

BenchSample = tuple[Mapping[str, Any], Any]


def bench_families(fam: Families, samples: Iterable[BenchSample]) -> None:
    for labels, ratio in samples:
        target = bench_target(labels.get("id"))
        bench = labels.get("bench")
        if target is None or not is_label_value(bench):
            continue
        value = as_value(ratio)
        if value is None or isinstance(ratio, bool) or value < 0:
            fam.failed(target, "bench_ratio")
            continue
        fam.add("nestctl_bench_ratio", value, id=target, bench=str(bench))


def bench_target(raw: object) -> str | None:
    """`qemu/<vmid>` or `node/<name>`, rebuilt from its parts (never copied as given)."""
    if not isinstance(raw, str):
        return None
    head, sep, tail = raw.partition("/")
    if not sep:
        return node_id(head)  # a host measured on itself
    if head == "node":
        return node_id(tail)
    if is_ascii_digits(tail) and (head == "qemu" or node_id(head) or head == "local"):
        return vm_id(int(tail))
    return None


def local_bench_samples(host: Host) -> list[BenchSample]:
    """Saved `nestctl bench --save` results on this host, as samples (none without the bench
    package). Imported by name: the bench package is optional for the metrics."""
    try:
        feed: Any = importlib.import_module("nestctl.bench.feed")
    except ImportError:
        return []
    return list(feed.metric_samples(feed.recent_results(host)))
