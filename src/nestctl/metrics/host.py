"""Host families: one node's hardware virtualization, `nested` now and after reboot, KVM params.

The same function reads the local `host` object of `nestctl doctor --json` and a node object of
the cluster report (`nestctl doctor --api --json`), which carries fewer keys: a key the report
does not have is simply not exported, a key that is null is a failed probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nestctl.host.kvm import PERFORMANCE_PARAMS
from nestctl.metrics.family import Families

#: States of every host check (one series each).
CHECK_STATES = ("ok", "broken", "unknown")
VENDORS = frozenset({"intel", "amd", "other"})
FLAGS = frozenset({"vmx", "svm"})


def _state(value: object) -> str:
    if value is True:
        return "ok"
    return "broken" if value is False else "unknown"


def cpu_was_read(host: Mapping[str, Any]) -> bool:
    """Whether the node's CPU flags were read (so a missing vmx/svm means "absent").

    Locally `vendor` defaults to "other" when /proc/cpuinfo is unreadable, so the CPU's own
    strings decide; a cluster node object has `vendor` null when its status could not be read.
    """
    if "vendor_id" in host or "cpu_model" in host:
        return host.get("vendor_id") is not None or host.get("cpu_model") is not None
    return host.get("vendor") in VENDORS


def host_families(fam: Families, hid: str, host: Mapping[str, Any]) -> None:
    """Families of one reachable node `hid` (``node/<name>``) from its report object."""
    fam.add("nestctl_up", 1.0, id=hid, layer="host")
    read = cpu_was_read(host)
    flag = host.get("virt_flag")
    vendor = host.get("vendor")
    module = host.get("kvm_module") if "kvm_module" in host else "unknown"
    if read and vendor in VENDORS:
        fam.add(
            "nestctl_host_info",
            1.0,
            id=hid,
            vendor=str(vendor),
            virt_flag=str(flag) if flag in FLAGS else "none",
            kvm_module=str(module) if module else "none",
        )
    capable = (flag in FLAGS) if read else None
    fam.gauge("nestctl_host_virt_capable", capable, hid, id=hid)
    if "dev_kvm" in host:
        fam.gauge("nestctl_host_kvm_device_present", host.get("dev_kvm"), hid, id=hid)
    nested = host.get("nested")
    nested = nested if isinstance(nested, Mapping) else {}
    live, after = nested.get("live"), nested.get("after_reboot")
    fam.gauge("nestctl_host_nested_enabled", live, hid, id=hid)
    fam.gauge("nestctl_host_nested_after_reboot", after, hid, id=hid)
    perf = host.get("performance")
    allowed = PERFORMANCE_PARAMS.get(module, ()) if isinstance(module, str) else ()
    if isinstance(perf, Mapping) and isinstance(module, str):
        for param, value in perf.items():
            if param in allowed:
                fam.gauge(
                    "nestctl_host_kvm_param_enabled", value, hid, id=hid, module=module, param=param
                )
    checks = {
        "hardware_virt": capable,
        "nested_now": live,
        "nested_after_reboot": after,
    }
    for check, value in checks.items():
        fam.enum("nestctl_check_status", CHECK_STATES, _state(value), id=hid, check=check)
