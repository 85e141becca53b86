"""Guest-observed families: what the guest itself reports through the QEMU guest agent.

Everything here comes from inside a VM, so nothing is trusted as a label: OS, accelerator,
feature and product names must be ones nestctl knows, or the sample is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nestctl.metrics.family import Families

OS_NAMES = frozenset({"linux", "windows"})
WINDOWS_PRODUCTS = ("hyperv", "wsl2", "docker_desktop")
WINDOWS_STATES = ("ready", "not-enabled", "not-ready", "unknown")


def guest_families(fam: Families, vid: str, vm: Mapping[str, Any]) -> None:
    """Families of one running VM's guest; a guest that did not answer is `up` 0 and no more."""
    guest = vm.get("guest")
    if not isinstance(guest, Mapping):
        fam.add("nestctl_up", 0.0, id=vid, layer="guest")
        return
    fam.add("nestctl_up", 1.0, id=vid, layer="guest")
    os_name = guest.get("os")
    if os_name in OS_NAMES:
        accel = guest.get("accel")
        fam.add("nestctl_guest_info", 1.0, id=vid, os=str(os_name), accel=str(accel or "unknown"))
    if os_name == "linux":
        _linux(fam, vid, guest)
    elif os_name == "windows":
        _windows(fam, vid, guest)
    fam.gauge("nestctl_guest_kvm_usable", guest.get("kvm_usable"), vid, id=vid)
    level = guest.get("level")
    fam.gauge("nestctl_guest_level", level if isinstance(level, int) else None, vid, id=vid)


def _linux(fam: Families, vid: str, guest: Mapping[str, Any]) -> None:
    linux = guest.get("linux")
    detail = linux if isinstance(linux, Mapping) else {}
    flag = guest.get("virt_flag")
    # `hypervisor_flag` is null exactly when the guest's /proc/cpuinfo could not be read.
    read = detail.get("hypervisor_flag") is not None
    visible = flag in ("vmx", "svm") if (read or flag) else None
    fam.gauge("nestctl_guest_virt_flag_visible", visible, vid, id=vid)
    fam.gauge("nestctl_guest_kvm_device_present", guest.get("dev_kvm"), vid, id=vid)


def _windows(fam: Families, vid: str, guest: Mapping[str, Any]) -> None:
    # Windows has no /proc/cpuinfo and no /dev/kvm: those two families do not apply (no series,
    # and no failed probe either). Features and product verdicts say what Windows can run.
    win = guest.get("windows")
    detail = win if isinstance(win, Mapping) else {}
    # Only the features nestctl probes become label values (imported here: Windows guests only).
    from nestctl.guest.windows import FEATURES  # noqa: PLC0415

    features = detail.get("features")
    if isinstance(features, Mapping):
        for name, state in features.items():
            if name in FEATURES and isinstance(state, str):
                value = 1.0 if state == "Enabled" else 0.0
                fam.add("nestctl_guest_windows_feature_enabled", value, id=vid, feature=name)
    else:
        fam.failed(vid, "guest_windows_feature_enabled")
    verdicts = detail.get("verdicts")
    verdicts = verdicts if isinstance(verdicts, Mapping) else {}
    for product in WINDOWS_PRODUCTS:
        verdict = verdicts.get(product)
        status = verdict.get("status") if isinstance(verdict, Mapping) else None
        if status in WINDOWS_STATES:
            fam.enum(
                "nestctl_guest_windows_status", WINDOWS_STATES, status, id=vid, product=product
            )
        else:
            fam.failed(vid, f"guest_windows_status_{product}")
