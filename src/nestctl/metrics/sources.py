"""Where a check's report comes from: this machine (`--root`), or a cluster over the API."""

from __future__ import annotations

from nestctl.metrics.run import Check, Checked


def local_check(root: str, *, guests: bool, all_nodes: bool, use_qemu: bool | None) -> Check:
    """`nestctl doctor --json` on the machine at `root`, plus the node's name for its ids."""

    def check() -> Checked:
        from nestctl.cli.common import open_host  # noqa: PLC0415 - lazy: keep start-up fast
        from nestctl.doctor import doctor_report  # noqa: PLC0415
        from nestctl.metrics.bench import local_bench_samples  # noqa: PLC0415
        from nestctl.vm.config import local_node  # noqa: PLC0415

        host = open_host(root)
        report = doctor_report(host, guests=guests, all_nodes=all_nodes, use_qemu=use_qemu)
        return Checked(report.to_json(), local_node(host), local_bench_samples(host))

    return check
