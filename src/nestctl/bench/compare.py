"""Compare result files: per workload the ratio to the first file, its interval, a verdict against
the published figures and the setting that explains a loss (see docs/bench.md).

Pure functions over loaded result documents; `compare` returns the `compare --json` contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nestctl.bench import published, stats
from nestctl.bench.results import label, number, ok_value, parse_level, result_map
from nestctl.bench.workloads import GROUPS, WORKLOADS

GEOMEAN_GROUPS = ("no_exit", "exit_heavy", "kernel", "io")
STEAL_LIMIT = 5.0  # percent of CPU time taken by the hypervisor below during a run
CONTENTION_LIMIT = 25.0  # percent of the CPUs other processes used during a run
_PAGING = frozenset({"page_touch_cold", "fork_exec", "pingpong", "sleep"})
_EXITS = frozenset(w.name for w in WORKLOADS if w.group in ("exit_heavy", "kernel"))
_ALL = frozenset(w.name for w in WORKLOADS)


@dataclass(frozen=True)
class Cause:
    code: str  # "emulation", "ept-npt-off", "shadow-vmcs-off", "clocksource", "steal", ...
    text: str
    affects: frozenset[str]
    always: bool = False  # named whatever the verdict (emulation, ignored flushes)


def _where(doc: dict[str, Any]) -> dict[str, Any]:
    w = doc.get("where")
    return w if isinstance(w, dict) else {}


def _value(where: dict[str, Any], key: str) -> object:
    item = where.get(key)
    return item.get("value") if isinstance(item, dict) else None


def _chain(where: dict[str, Any]) -> dict[str, Any]:
    c = where.get("chain")
    return c if isinstance(c, dict) else {}


def is_emulated(where: dict[str, Any]) -> bool:
    return where.get("accel") == "tcg" or _chain(where).get("accel") == "tcg"


def _percent(where: dict[str, Any], key: str) -> float | None:
    s = where.get(key)
    return number(s.get("percent")) if isinstance(s, dict) else None


def _steal(where: dict[str, Any]) -> float | None:
    return _percent(where, "steal")


def steps_between(base: dict[str, Any], other: dict[str, Any], index: int) -> tuple[int, bool]:
    """(levels from base to other, base is bare metal). Unknown levels: one per file in order."""
    a, b = parse_level(base.get("level")), parse_level(other.get("level"))
    from_metal = a is not None and a == (0, True)
    if a is not None and b is not None:
        return b[0] - a[0], from_metal
    return index, from_metal


def _chain_causes(chain: dict[str, Any]) -> list[Cause]:
    """What the host said about the VM a result came from (`--vm`)."""
    out: list[Cause] = []
    raw = chain.get("disk_cache")
    caches: dict[str, Any] = raw if isinstance(raw, dict) else {}
    unsafe = sorted(d for d, mode in caches.items() if mode == "unsafe")
    if unsafe:
        out.append(
            Cause(
                "cache-unsafe",
                f"disk cache=unsafe on {', '.join(unsafe)}: the host ignores the guest's flushes, "
                "so fsync says nothing about the disk",
                frozenset({"fsync"}),
                always=True,
            )
        )
    if chain.get("host_ept_npt") is False:
        out.append(
            Cause(
                "ept-npt-off",
                f"EPT/NPT off on the host running this VM ({chain.get('host_ept_npt_source')})",
                _PAGING,
            )
        )
    return out


def causes_for(docs: list[dict[str, Any]], i: int) -> list[Cause]:
    """Settings that explain why file i differs from the first (file 0)."""
    base, here = _where(docs[0]), _where(docs[i])
    out: list[Cause] = []
    if is_emulated(here):
        out.append(
            Cause(
                "emulation",
                "software emulation (QEMU TCG), not nesting: this level runs without KVM, "
                "so its numbers say nothing about nested virtualization",
                _ALL,
                always=True,
            )
        )
    elif is_emulated(base):
        out.append(
            Cause("emulation", "the first file was measured under TCG (emulation)", _ALL, True)
        )
    level_here = parse_level(here.get("level"))
    for j in range(i):
        below = _where(docs[j])
        name = below.get("hostname") or f"file {j + 1}"
        if _value(below, "ept_npt") is False:
            out.append(
                Cause(
                    "ept-npt-off",
                    f"EPT/NPT off on {name} ({below['ept_npt'].get('source')}): shadow paging "
                    "makes every guest page-table change exit",
                    _PAGING,
                )
            )
        level_below = parse_level(below.get("level"))
        two_down = level_here is None or level_below is None or level_here[0] - level_below[0] >= 2
        if _value(below, "shadow_vmcs") is False and two_down:
            out.append(
                Cause(
                    "shadow-vmcs-off",
                    f"shadow VMCS off on {name}: every VMREAD/VMWRITE of the nested hypervisor "
                    "exits (shadow VMCS removes up to 40% of nested overhead)",
                    _EXITS,
                )
            )
    out.extend(_chain_causes(_chain(here)))
    for who, where in (("this level", here), ("the first file", base)):
        if where.get("clocksource_exits") is True:
            out.append(
                Cause(
                    "clocksource",
                    f"clock source {where.get('clocksource')} on {who}: every clock read exits "
                    "(use tsc or kvm-clock)",
                    frozenset({"clock", "sleep"}),
                )
            )
        busy = _percent(where, "contention")
        if busy is not None and busy >= CONTENTION_LIMIT:
            out.append(
                Cause(
                    "contention",
                    f"other processes used {busy:.0f}% of the CPUs on {who} during the run: "
                    "its medians are noisy (rerun on an idle machine)",
                    _ALL,
                )
            )
        steal = _steal(where)
        if steal is not None and steal >= STEAL_LIMIT:
            out.append(
                Cause(
                    "steal",
                    f"steal time {steal:.1f}% on {who} during the run: the hypervisor below was "
                    "busy elsewhere (not a nesting cost)",
                    _ALL,
                )
            )
    if _mitigations(base) != _mitigations(here) and _mitigations(here) is not None:
        out.append(
            Cause(
                "mitigations",
                "kernel mitigations differ between the levels (/sys/devices/system/cpu/"
                "vulnerabilities, mitigations=)",
                frozenset({"syscall", "fork_exec", "pingpong"}),
            )
        )
    model_a, model_b = base.get("cpu_model"), here.get("cpu_model")
    if model_a and model_b and model_a != model_b and not is_emulated(here):
        out.append(
            Cause(
                "cpu-model",
                f"different CPU models ({model_a} vs {model_b}): frequency and microarchitecture "
                "differ, not only the level",
                frozenset(w.name for w in WORKLOADS if w.group == "no_exit"),
            )
        )
    return out


def _mitigations(where: dict[str, Any]) -> object:
    m = where.get("mitigations")
    return (m.get("cmdline"), m.get("vulnerabilities")) if isinstance(m, dict) else None


def _no_device(entry: dict[str, Any] | None) -> bool:
    note = entry.get("note") if entry else None
    return isinstance(note, str) and "no block device" in note


def _judge(
    name: str,
    ratio: float,
    interval: tuple[float, float] | None,
    steps: tuple[int, bool],
    causes: list[Cause],
) -> tuple[str, str | None, published.Expectation | None]:
    exp = published.expected(name, steps[0], steps[1])
    named = [c for c in causes if name in c.affects]
    emulation = next((c for c in named if c.code == "emulation"), None)
    if emulation is not None:
        return "emulation", emulation.text, exp
    if exp is None:
        return "unknown", None, None
    verdict = published.verdict(interval or (ratio, ratio), exp)
    if verdict != "worse":
        always = "; ".join(c.text for c in named if c.always)
        return verdict, always or None, exp
    return verdict, "; ".join(c.text for c in named) or None, exp


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def compare(docs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The `compare --json` object for loaded result documents (the first is the base)."""
    maps = [result_map(d) for d in docs]
    wheres = [_where(d) for d in docs]
    steps = [steps_between(wheres[0], w, i) for i, w in enumerate(wheres)]
    causes = [causes_for(docs, i) if i else [] for i in range(len(docs))]
    order = [w.name for w in WORKLOADS]
    order += sorted({n for m in maps for n in m} - set(order))
    workloads: list[dict[str, Any]] = []
    for name in order:
        entries = [m.get(name) for m in maps]
        base = ok_value(entries[0])
        ratios: list[float | None] = []
        intervals: list[list[float] | None] = []
        verdicts: list[str | None] = []
        why: list[str | None] = []
        expect: published.Expectation | None = None
        for i, entry in enumerate(entries):
            value = ok_value(entry)
            if i == 0 or base is None or value is None:
                ratios.append(1.0 if i == 0 and base is not None else None)
                intervals.append(None)
                verdicts.append(None if i == 0 else "unknown")
                why.append(None if i == 0 else _missing(entries[0], entry))
                continue
            r = stats.ratio(value[0], base[0])
            iv = stats.ratio_interval(value[0], value[1], base[0], base[1])
            assert r is not None  # both medians are positive (ok_value)
            verdict, cause, expect = _judge(name, r, iv, steps[i], causes[i])
            if name == "fsync" and (_no_device(entry) or _no_device(entries[0])):
                disk = "fsync reached no disk (tmpfs or similar) on one side: says nothing on I/O"
                cause = f"{cause}; {disk}" if cause else disk
            ratios.append(_round(r))
            intervals.append([round(iv[0], 4), round(iv[1], 4)] if iv else None)
            verdicts.append(verdict)
            why.append(cause)
        first = next((e for e in entries if e), {}) or {}
        workloads.append(
            {
                "name": name,
                "group": GROUPS.get(name, first.get("group")),
                "unit": first.get("unit"),
                "medians": [number(e.get("median")) if e else None for e in entries],
                "ratios": ratios,
                "interval": intervals,
                "verdict": verdicts[-1] if len(docs) > 1 else None,
                "cause": why[-1] if len(docs) > 1 else None,
                "verdicts": verdicts,
                "causes": why,
                "expected": [expect.low, expect.high] if expect else None,
                "source": expect.source if expect else None,
            }
        )
    geo: dict[str, list[float | None]] = {}
    for group in GEOMEAN_GROUPS:
        rows = [w for w in workloads if w["group"] == group]
        geo[group] = [_round(stats.geomean(w["ratios"][i] for w in rows)) for i in range(len(docs))]
    files = [_file_entry(d, n) for d, n in zip(docs, names, strict=True)]
    return {"files": files, "workloads": workloads, "geomean": geo}


def _missing(base: dict[str, Any] | None, entry: dict[str, Any] | None) -> str:
    for who, e in (("the first file", base), ("this file", entry)):
        if e is None:
            return f"not run in {who}"
        if e.get("status") != "ok":
            return f"{who}: {e.get('reason') or 'not measurable'}"
    return "no usable median"


def _file_entry(doc: dict[str, Any], name: str) -> dict[str, Any]:
    w = _where(doc)
    return {
        "path": name,
        "label": label(doc, name),
        "level": w.get("level"),
        "accel": w.get("accel"),
        "emulation": is_emulated(w),
        "hypervisor": w.get("hypervisor"),
        "cpu_model": w.get("cpu_model"),
        "clocksource": w.get("clocksource"),
        "ept_npt": _value(w, "ept_npt"),
        "shadow_vmcs": _value(w, "shadow_vmcs"),
        "steal_percent": _steal(w),
        "contention_percent": _percent(w, "contention"),
        "chain": w.get("chain"),
        "started": doc.get("started"),
    }


def pathological(report: dict[str, Any]) -> bool:
    """Whether a comparison shows a loss beyond the published figures, or emulation."""
    return any(w["verdict"] in ("worse", "emulation") for w in report["workloads"])
