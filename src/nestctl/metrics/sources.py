"""Where a check's report comes from: this machine (`--root`), or a cluster over the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nestctl.metrics.run import Check, Checked

if TYPE_CHECKING:
    from nestctl.api.targets import Target


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


def api_check(
    target: Target, params: dict[str, Any], *, guests: bool, backups: float | None = None
) -> Check:
    """`nestctl doctor --api --json` for one target (every node and VM of the cluster).

    The client is opened for each check (a rotated token file is picked up); any failure to
    reach the cluster is a failed run.
    """

    def check() -> Checked:
        from nestctl.cli.apiopts import scan_target  # noqa: PLC0415 - lazy: keep start-up fast
        from nestctl.vm.facts import VmOptions  # noqa: PLC0415
        from nestctl.vm.remote import doctor_report  # noqa: PLC0415

        opts = VmOptions(all_nodes=True, guest=guests, use_qemu=False, sections=False)
        body = doctor_report(scan_target(target, params, opts), opts).to_json()
        if backups is not None:  # `--backups DAYS`: each guest's backups too
            body["backups"] = _backups(target, params, backups)
        return Checked(body)

    return check


def _backups(target: Target, params: dict[str, Any], max_age_days: float) -> list[dict[str, Any]]:
    from nestctl.cli.apiopts import open_client  # noqa: PLC0415
    from nestctl.metrics.backup import backup_body  # noqa: PLC0415

    client = open_client(target, params)
    try:
        return backup_body(client, max_age_days=max_age_days)
    finally:
        client.close()
