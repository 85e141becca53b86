"""Every metric family nestctl exports: its name, help text and the labels it carries.

One table, so the writers, the docs, the alert rules and the tests agree on names. All families
are gauges; ids are pve-exporter's (`node/<name>`, `qemu/<vmid>`) so `on(id)` joins work.
"""

from __future__ import annotations

from typing import NamedTuple

PREFIX = "nestctl_"


class Spec(NamedTuple):
    help: str
    labels: tuple[str, ...]


CATALOGUE: dict[str, Spec] = {
    # The run itself.
    "nestctl_build_info": Spec("nestctl version that wrote these metrics (value 1)", ("version",)),
    "nestctl_run_success": Spec(
        "1 if the last check ran to the end, 0 if it failed or timed out", ()
    ),
    "nestctl_run_duration_seconds": Spec("How long the last check took", ()),
    "nestctl_last_success_timestamp_seconds": Spec(
        "Unix time the last successful check finished", ()
    ),
    "nestctl_verdict": Spec(
        "Overall verdict of the last check, one series per state (1 on the active state)",
        ("verdict",),
    ),
    "nestctl_up": Spec(
        "1 if the target (node, VM or guest layer) could be checked, 0 if not", ("id", "layer")
    ),
    "nestctl_probe_failed": Spec(
        "1 for a value that could not be determined (its own series is then absent)",
        ("id", "probe"),
    ),
    "nestctl_check_status": Spec(
        "State of each check, one series per state (1 on the active state)",
        ("id", "check", "status"),
    ),
    "nestctl_finding": Spec(
        "A finding of the last check by its stable code (value 1)", ("id", "code", "severity")
    ),
    # Host (per node).
    "nestctl_host_info": Spec(
        "Host CPU vendor, virtualization flag and KVM module (value 1)",
        ("id", "vendor", "virt_flag", "kvm_module"),
    ),
    "nestctl_host_virt_capable": Spec(
        "1 if the CPU shows hardware virtualization (vmx or svm), 0 if not", ("id",)
    ),
    "nestctl_host_kvm_device_present": Spec("1 if /dev/kvm exists on the host", ("id",)),
    "nestctl_host_nested_enabled": Spec("1 if KVM's nested parameter is on now", ("id",)),
    "nestctl_host_nested_after_reboot": Spec(
        "1 if KVM's nested parameter will be on after the next reboot (modprobe config)", ("id",)
    ),
    "nestctl_host_kvm_param_enabled": Spec(
        "KVM module parameters nested guests need for speed (ept, npt, ...), 1 if on",
        ("id", "module", "param"),
    ),
    # Per VM.
    "nestctl_vm_running": Spec("1 if the VM's QEMU process runs", ("id",)),
    "nestctl_vm_nested_configured": Spec(
        "1 if the VM's config (pending changes included) asks for vmx/svm", ("id",)
    ),
    "nestctl_vm_nested_exposed": Spec(
        "1 if the guest gets vmx/svm now (running process, or config when stopped)", ("id",)
    ),
    "nestctl_vm_restart_pending": Spec(
        "1 if the VM needs a Proxmox stop/start: a pending cpu/machine/args/kvm change, or a "
        "running -cpu that differs from the config",
        ("id",),
    ),
    "nestctl_vm_config_mismatch": Spec(
        "1 if the running -cpu differs from the config in force", ("id",)
    ),
    "nestctl_vm_wants_nested": Spec(
        "1 if the VM is meant to nest (its tag, an inner layer, its config or its guest's "
        "hypervisor role: the intent label says which), 0 if not",
        ("id", "intent"),
    ),
    "nestctl_vm_verdict": Spec(
        "The VM's verdict, one series per state (1 on the active state); not-nested: it does "
        "not want nesting (neutral)",
        ("id", "verdict"),
    ),
    # Containers (`lxc/<vmid>`): what their config lets them run nested.
    "nestctl_ct_running": Spec("1 if the container runs, 0 if not", ("id",)),
    "nestctl_ct_unprivileged": Spec("1 if the container is unprivileged, 0 if privileged", ("id",)),
    "nestctl_ct_wants_nested": Spec(
        "1 if the container is meant to run nested workloads (its tag, keyctl or /dev/kvm: the "
        "intent label says which), 0 if not",
        ("id", "intent"),
    ),
    "nestctl_ct_verdict": Spec(
        "The container's verdict, one series per state (1 on the active state); not-nested: it "
        "does not want nested workloads (neutral)",
        ("id", "verdict"),
    ),
    "nestctl_ct_workload": Spec(
        "1 if the container's config lets it run this workload (docker, systemd, kvm, fuse)",
        ("id", "workload"),
    ),
    # Guest-observed (through the guest agent).
    "nestctl_guest_info": Spec(
        "What the guest reports: OS family and accelerator (value 1)", ("id", "os", "accel")
    ),
    "nestctl_guest_virt_flag_visible": Spec("1 if the guest's CPU shows vmx or svm", ("id",)),
    "nestctl_guest_kvm_device_present": Spec("1 if /dev/kvm exists in a Linux guest", ("id",)),
    "nestctl_guest_kvm_usable": Spec(
        "1 if the guest can run VMs now (Linux: /dev/kvm usable; Windows: Hyper-V or WSL2)",
        ("id",),
    ),
    "nestctl_guest_level": Spec("Nesting level the guest runs at (1 = VM on bare metal)", ("id",)),
    "nestctl_guest_windows_feature_enabled": Spec(
        "1 if a Windows optional feature is enabled in the guest", ("id", "feature")
    ),
    "nestctl_guest_windows_status": Spec(
        "Windows Hyper-V / WSL2 / Docker Desktop readiness, one series per state",
        ("id", "product", "status"),
    ),
    # Benchmarks (nestctl bench).
    "nestctl_bench_ratio": Spec(
        "Nested speed relative to the shallowest layer measured (1 = no overhead)", ("id", "bench")
    ),
    # Backups (`--backups`): the newest backup of each guest and the verdict on its backups.
    "nestctl_guest_last_backup_timestamp_seconds": Spec(
        "Unix time of the guest's newest backup on any backup storage", ("id",)
    ),
    "nestctl_guest_last_backup_size_bytes": Spec("Size of the guest's newest backup", ("id",)),
    "nestctl_guest_backup_status": Spec(
        "The guest's backups, one series per state (1 on the active state): ok, failed (the "
        "last backup task failed), stale (older than the limit), none, running, unknown",
        ("id", "status"),
    ),
}
