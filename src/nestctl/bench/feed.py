"""What other layers read from result files: ratios for the metrics exporter, findings for doctor.

Pure functions over loaded documents (`results.load_result`), plus `recent_results`, which reads
the saved results (`nestctl bench --save`) through `Host`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from nestctl.bench import RESULTS_DIR
from nestctl.bench.compare import compare
from nestctl.bench.results import ResultFileError, parse_level, parse_result
from nestctl.findings import Finding, warning

if TYPE_CHECKING:
    from nestctl.machine import Host

__all__ = ["RESULTS_DIR", "doctor_findings", "metric_samples", "recent_results", "result_id"]

RECENT_DAYS = 30.0


def result_id(doc: dict[str, Any], fallback: str = "local") -> str:
    """A stable id for a result: "node/vmid" for a VM measured from its host, else the host name."""
    raw = doc.get("where")
    where: dict[str, Any] = raw if isinstance(raw, dict) else {}
    chain = where.get("chain") if isinstance(where.get("chain"), dict) else None
    if chain and chain.get("vmid") is not None:
        return f"{chain.get('node') or 'local'}/{chain.get('vmid')}"
    host = where.get("hostname")
    return host if isinstance(host, str) and host else fallback


def _depth(doc: dict[str, Any]) -> int:
    level = parse_level((doc.get("where") or {}).get("level"))
    return level[0] if level else 99


def pick_base(docs: list[dict[str, Any]]) -> int:
    """The index of the reference: the shallowest level, the newest of those."""
    return min(range(len(docs)), key=lambda i: (_depth(docs[i]), str(docs[i].get("started"))))


def ratios(doc: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    """bench name -> ratio of `doc` to `base` (only workloads measured in both)."""
    report = compare([base, doc], ["base", "this"])
    return {w["name"]: w["ratios"][1] for w in report["workloads"] if w["ratios"][1] is not None}


def metric_samples(docs: list[dict[str, Any]]) -> list[tuple[dict[str, str], float]]:
    """({"id", "bench"}, ratio) for every result against the shallowest one: the samples of
    `nestctl_bench_ratio{id=...,bench=...}`. The reference itself is left out (always 1)."""
    if len(docs) < 2:
        return []
    base_index = pick_base(docs)
    out: list[tuple[dict[str, str], float]] = []
    for i, doc in enumerate(docs):
        if i == base_index:
            continue
        ident = result_id(doc, f"result{i}")
        for bench, value in ratios(doc, docs[base_index]).items():
            out.append(({"id": ident, "bench": bench}, value))
    return out


def doctor_findings(
    docs: list[dict[str, Any]], *, now: float | None = None, max_age_days: float = RECENT_DAYS
) -> list[Finding]:
    """One warning per recent result whose comparison with the reference shows a loss beyond the
    published figures (with its cause when a setting explains it) or software emulation."""
    now = time.time() if now is None else now
    recent = [d for d in docs if _age_days(d, now) <= max_age_days]
    if len(recent) < 2:
        return []
    base_index = pick_base(recent)
    base = recent[base_index]
    findings: list[Finding] = []
    for i, doc in enumerate(recent):
        if i == base_index:
            continue
        report = compare([base, doc], [result_id(base), result_id(doc)])
        bad = [w for w in report["workloads"] if w["verdict"] in ("worse", "emulation")]
        if not bad:
            continue
        ident = result_id(doc)
        if any(w["verdict"] == "emulation" for w in bad):
            findings.append(
                warning(
                    "bench-emulation",
                    f"benchmark of {ident}: runs under software emulation (TCG), not KVM",
                    "give the VM KVM: qm set <vmid> --kvm 1 (and nested virtualization on the "
                    "host below)",
                )
            )
            continue
        parts = [
            f"{w['name']} {w['ratios'][1]:.2f}x (published {w['expected'][0]:g}-"
            f"{w['expected'][1]:g}x)" + (f": {w['cause']}" if w["cause"] else "")
            for w in bad
        ]
        findings.append(
            warning(
                "bench-pathological",
                f"benchmark of {ident} vs {result_id(base)}: " + "; ".join(parts),
                "rerun `nestctl bench --levels` after fixing the named cause",
            )
        )
    return findings


def _age_days(doc: dict[str, Any], now: float) -> float:
    import datetime  # noqa: PLC0415 - only doctor runs pay for it

    started = doc.get("started")
    if not isinstance(started, str):
        return float("inf")
    try:
        when = datetime.datetime.fromisoformat(started)
    except ValueError:
        return float("inf")
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return (now - when.timestamp()) / 86400.0


def recent_results(host: Host, directory: str = RESULTS_DIR) -> list[dict[str, Any]]:
    """The result files saved under `directory` (unreadable or foreign files are skipped)."""
    docs = []
    for path in host.glob(directory, "*.json").paths():
        read = host.read(path, max_bytes=4 * 1024 * 1024)
        if read.text is None:
            continue
        try:
            docs.append(parse_result(read.text, path))
        except ResultFileError:
            continue
    return docs
