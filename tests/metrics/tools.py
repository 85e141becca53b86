"""What the metrics tests share: fixture nodes, Prometheus's own tools, cluster report bodies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.doctor.test_doctor import node
from tests.skips import give_up
from tests.vm.vmtrees import run_vm, vm_conf

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib"
KVM64 = "kvm64,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+lahf_lm,+sep"


def require(tool: str) -> str:
    """Path of a Prometheus tool; missing fails in CI (scripts/install-debian-deps installs it)."""
    path = shutil.which(tool)
    if path is None:
        give_up(f"{tool} not installed (Debian package prometheus; scripts/install-debian-deps)")
    return path


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run promtool; a non-zero exit fails the test with promtool's own words."""
    done = subprocess.run(
        [require("promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def lab_node(root: Path) -> Path:
    """pve1: Intel, nested on; VM 100 nested and running, 101 waiting for a restart (both
    tagged `nested`), 102 not meant to nest (Windows, stopped)."""
    node(root)
    vm_conf(root, 100, "name: lab\nostype: l26\ncpu: host\ntags: nested\n")
    run_vm(root, 100, 4242, "host,+kvm_pv_eoi,+kvm_pv_unhalt")
    vm_conf(root, 101, "ostype: l26\ntags: nested\n\n[PENDING]\ncpu: host\n")
    run_vm(root, 101, 4243, KVM64)
    vm_conf(root, 102, "name: win\nostype: win11\n")
    return root


def vm_obj(vmid: int, node_name: str, **over: Any) -> dict[str, Any]:
    """A VM object of the `vm --json` contract, plus `node` (issue 13's cluster report)."""
    body: dict[str, Any] = {
        "vmid": vmid,
        "name": f"vm{vmid}",
        "node": node_name,
        "running": True,
        "cpu_arg": "host,+kvm_pv_eoi,+kvm_pv_unhalt",
        "cpu_arg_pending": None,
        "running_cpu_arg": "host,+kvm_pv_eoi,+kvm_pv_unhalt",
        "nested": {"exposed": True, "flag": "vmx", "source": "table"},
        "restart_required": False,
        "findings": [],
        "chain": {"host": "ok", "config": "ok", "process": "ok", "guest": "ok"},
        "broken_link": None,
    }
    body.update(over)
    return body


def linux_guest(**over: Any) -> dict[str, Any]:
    """The `guest` object of a Linux VM whose agent answered (`vm --guest --json`)."""
    body: dict[str, Any] = {
        "os": "linux",
        "virt_flag": "vmx",
        "dev_kvm": True,
        "kvm_usable": True,
        "accel": "kvm",
        "level": 1,
        "hypervisor": "kvm",
        "via": "agent",
        "linux": {"hypervisor_flag": True},
    }
    body.update(over)
    return body


def cluster_body() -> dict[str, Any]:
    """`nestctl doctor --api --json` as issue 13 specifies it: pve2 is down."""
    return {
        "nodes": [
            {
                "node": "pve1",
                "reachable": True,
                "vendor": "intel",
                "virt_flag": "vmx",
                "nested": {"live": True, "after_reboot": None, "decided_by": None},
                "findings": [
                    {
                        "code": "api.nested-unknown",
                        "severity": "warning",
                        "message": "the API cannot see nested after reboot",
                        "fix": None,
                    }
                ],
            },
            {
                "node": "pve2",
                "reachable": False,
                "vendor": None,
                "virt_flag": None,
                "nested": {"live": None, "after_reboot": None, "decided_by": None},
                "findings": [],
            },
        ],
        "vms": [
            vm_obj(100, "pve1"),
            vm_obj(
                200,
                "pve2",
                cpu_arg=None,
                running=None,
                nested={"exposed": None, "flag": None, "source": "table"},
            ),
        ],
        "findings": [],
        "verdict": "unknown",
    }


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Exposition text -> {(name, labels): value}, read by prometheus_client's own parser."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    return {name for name, _ in samples}
