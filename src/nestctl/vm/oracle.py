"""This machine's QEMU as the oracle for -cpu values (local and cluster-file-system scans only:
over the API, the nodes' QEMU is not ours to run)."""

from __future__ import annotations

from typing import Any

from nestctl.machine import Host
from nestctl.vm import exposure as exp
from nestctl.vm.analyse import VmContext, effective_cpu
from nestctl.vm.facts import VmFacts


class QemuAnswers:
    """The installed QEMU's answers, asked once per distinct value (in parallel via `prefetch`)."""

    def __init__(self, oracle: Any, vendor: str | None) -> None:
        self.oracle = oracle  # nestctl.qemu.cpuprobe.QemuCpuOracle
        self.vendor = vendor
        self.memo: dict[str, exp.OracleAnswer] = {}

    def __call__(self, cpu_arg: str) -> exp.OracleAnswer | None:
        if cpu_arg not in self.memo:
            self.memo[cpu_arg] = self.oracle.ask(cpu_arg, self.vendor)
        return self.memo[cpu_arg]

    def prefetch(self, values: set[str]) -> None:
        wanted = sorted(v for v in values if v not in self.memo)
        if wanted:
            self.memo.update(self.oracle.ask_many(wanted, self.vendor))


def oracle_for(host: Host, use_qemu: bool | None, vendor: str | None) -> QemuAnswers | None:
    if use_qemu is False or (use_qemu is None and not host.live):
        return None
    from nestctl.qemu.cache import CpuAnswerCache  # noqa: PLC0415 - only when QEMU is asked
    from nestctl.qemu.cpuprobe import QemuCpuOracle  # noqa: PLC0415

    oracle = QemuCpuOracle(cache=CpuAnswerCache())
    return QemuAnswers(oracle, vendor) if oracle.available else None


def prefetch(ctx: VmContext, vms: list[VmFacts]) -> None:
    """Collect every distinct -cpu value first, so QEMU is asked for them in one parallel batch."""
    if not isinstance(ctx.oracle, QemuAnswers):
        return
    values: set[str] = set()
    for vm in vms:
        cfg, run = vm.config, vm.run
        confs = (cfg.current(), cfg.with_pending()) if cfg.has_pending else (cfg.current(),)
        for conf in confs:
            value = effective_cpu(ctx.predict(conf, ctx.env))
            if value is not None:
                values.add(value)
        if run.vm is not None and run.vm.cpu_arg is not None:
            values.add(run.vm.cpu_arg)
    ctx.oracle.prefetch({v for v in values if v.split(",")[0] not in exp.PASSTHROUGH_MODELS})
