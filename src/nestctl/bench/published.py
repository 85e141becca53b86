"""Published figures for what one more level of virtualization costs, per workload.

From ../shared/reference/nesting-overhead.md (Turtles OSDI 2010, LKML measurements, the KVM
enlightened-VMCS and shadow-VMCS patches, Google Cloud's documentation). Where no paper measured a
workload directly the range is derived from the exit costs it is made of, and says so.
A ratio is "in line" when its interval meets the range, "better" below it, "worse" above it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expectation:
    low: float
    high: float
    source: str


_FLAT = "no VM exit: ~1.0x per level"
#: One level deeper, between two virtual levels (L2 vs L1 and beyond).
DEEPER: dict[str, Expectation] = {
    "cpu": Expectation(0.95, 1.05, "CPU-bound work loses <= 5% per level (Turtles, Google Cloud)"),
    "syscall": Expectation(0.95, 1.10, _FLAT + "; a difference points at kernel mitigations"),
    "rdtsc": Expectation(0.95, 1.10, _FLAT + " (TSC offsetting)"),
    "page_touch_warm": Expectation(0.95, 1.10, _FLAT + " (memory already mapped)"),
    "cpuid": Expectation(
        8.0, 20.0, "L2 vs L1 cpuid 8-20x (Turtles 2,600 -> 58,000 cycles; eVMCS 8,304 cycles)"
    ),
    "pingpong": Expectation(
        1.5,
        10.0,
        "derived: wake-up IPIs and halts exit (IPI 3,300-4,200 cycles at L1), "
        "diluted by the pipe work",
    ),
    "sleep": Expectation(
        1.5, 10.0, "derived: timer and halt exits (tscdeadline 2,500-5,800 cycles at L1)"
    ),
    "page_touch_cold": Expectation(1.10, 1.25, "kernbench-like 10-25% (Turtles: +14.5% L2 vs L1)"),
    "fork_exec": Expectation(1.10, 1.25, "kernbench-like 10-25% (Turtles: +14.5% L2 vs L1)"),
    "clock": Expectation(0.90, 1.20, "vDSO clock (tsc, kvm-clock) ~1.0x; hpet/acpi_pm exit"),
    "fsync": Expectation(
        2.0, 10.0, "two layers of device emulation 2-10x (virtual I/O 2.5-3x, NV2 2.5-2.75x)"
    ),
}
#: The first level (L1 vs bare metal), where it differs from the above.
FROM_METAL: dict[str, Expectation] = {
    "cpuid": Expectation(
        5.0, 30.0, "L1 vs bare metal cpuid: native ~100-200 cycles, L1 ~1,000-2,600"
    ),
    "pingpong": Expectation(1.2, 5.0, "derived: IPI and halt exits at L1 (LKML 2020)"),
    "sleep": Expectation(1.0, 5.0, "derived: timer exits at L1 (tscdeadline 2,500-5,800 cycles)"),
    "page_touch_cold": Expectation(1.05, 1.15, "kernbench-like (Turtles: +9.5% L1 vs host)"),
    "fork_exec": Expectation(1.05, 1.15, "kernbench-like (Turtles: +9.5% L1 vs host)"),
    "fsync": Expectation(1.2, 3.0, "derived: one layer of device emulation"),
}
SAME_LEVEL = Expectation(0.90, 1.10, "same level: no published figure applies; within 10%")


def expected(workload: str, steps: int, from_metal: bool) -> Expectation | None:
    """The range for `steps` more levels (composed per level); None for an unknown workload."""
    if steps <= 0:
        return SAME_LEVEL if workload in DEEPER else None
    deeper = DEEPER.get(workload)
    if deeper is None:
        return None
    first = FROM_METAL.get(workload, deeper) if from_metal else deeper
    low, high = first.low, first.high
    for _ in range(steps - 1):
        low, high = low * deeper.low, high * deeper.high
    if steps == 1:
        return first
    return Expectation(round(low, 3), round(high, 3), f"{steps} levels of: {deeper.source}")


def verdict(interval: tuple[float, float], exp: Expectation) -> str:
    """ "better", "in line" or "worse" for a ratio's interval against the published range."""
    low, high = interval
    if high < exp.low:
        return "better"
    if low > exp.high:
        return "worse"
    return "in line"
