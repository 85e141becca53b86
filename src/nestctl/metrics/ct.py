"""Families of one container (`lxc/<vmid>`, as prometheus-pve-exporter labels it): running, what
its config lets it run, its intent and its verdict (the one verdict every view shows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nestctl.metrics.family import Families
from nestctl.metrics.vm import INTENTS, VM_VERDICTS

WORKLOADS = ("docker", "systemd", "kvm", "fuse")


def ct_id(vmid: object) -> str | None:
    """`lxc/<vmid>` exactly as prometheus-pve-exporter writes it."""
    if isinstance(vmid, int) and not isinstance(vmid, bool) and 100 <= vmid <= 999_999_999:
        return f"lxc/{vmid}"
    return None


def ct_families(fam: Families, cid: str, ct: Mapping[str, Any]) -> None:
    """Families of one container `cid` whose node could be reached."""
    fam.add("nestctl_up", 1.0, id=cid, layer="ct")
    fam.gauge("nestctl_ct_running", ct.get("running"), cid, id=cid)
    fam.gauge("nestctl_ct_unprivileged", ct.get("unprivileged"), cid, id=cid)
    intent = str(ct.get("intent"))
    intent = intent if intent in INTENTS else "none"
    fam.gauge("nestctl_ct_wants_nested", ct.get("wants_nested"), cid, id=cid, intent=intent)
    verdict = ct.get("verdict")
    fam.enum("nestctl_ct_verdict", VM_VERDICTS, verdict if verdict in VM_VERDICTS else "unknown",
             id=cid)  # fmt: skip
    workloads = ct.get("workloads")
    if not isinstance(workloads, Mapping):
        return
    for name in WORKLOADS:
        value = workloads.get(name)
        if value is None:
            fam.failed(cid, f"ct_workload_{name}")
        else:
            fam.gauge("nestctl_ct_workload", value, cid, id=cid, workload=name)
