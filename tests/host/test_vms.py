"""Which processes block a KVM module reload: Proxmox's own pid-file check, and other QEMU."""

from __future__ import annotations

from pathlib import Path

from nestctl.host.pidfiles import is_qemu_program
from nestctl.host.probe import probe_host
from nestctl.host.vms import running_vms
from nestctl.machine import Host
from tests.helpers import write_tree
from tests.host.scenarios import intel_host, qemu_cmdline


def test_pid_files_under_run_and_var_run_count_once(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/run/qemu-server/200.pid": "700\n",
            "/var/run/qemu-server/200.pid": "700\n",  # the same file seen through the symlink
            "/run/qemu-server/201.pid": "701\n",
            "/proc/700/cmdline": qemu_cmdline(200),
            "/proc/701/cmdline": b"/usr/bin/python3\0-m\0http.server\0",  # pid reused: not QEMU
        },
    )
    found = running_vms(Host(tmp_path))
    assert found.vms == {200: 700}
    assert found.stale_pidfiles == ("/run/qemu-server/201.pid",)
    assert found.others == ()  # the Proxmox VM is not counted twice


def test_garbage_pid_files_are_stale_not_fatal(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/var/run/qemu-server/300.pid": b"\xff\xfe",
            "/var/run/qemu-server/301.pid": "-5\n",
            "/var/run/qemu-server/302.pid": "99999999999999999999\n",
            "/var/run/qemu-server/abc.pid": "1\n",
        },
    )
    found = running_vms(Host(tmp_path))
    assert found.vms == {}
    assert len(found.stale_pidfiles) == 3


def test_qemu_argv0_rule() -> None:
    assert is_qemu_program("/usr/bin/kvm")
    assert is_qemu_program("/usr/bin/qemu-system-x86_64")
    assert is_qemu_program("qemu-kvm")
    assert not is_qemu_program("/usr/bin/qemu")  # Proxmox wants kvm or qemu-*
    assert not is_qemu_program("/usr/bin/python3")
    assert not is_qemu_program("")


def test_other_qemu_needs_kvm_to_count(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/proc/10/cmdline": b"qemu-system-x86_64\0-enable-kvm\0",
            "/proc/11/cmdline": b"qemu-system-x86_64\0-machine\0q35,accel=kvm:tcg\0",
            "/proc/12/cmdline": b"qemu-system-x86_64\0-accel\0tcg\0",
            "/proc/13/cmdline": b"qemu-system-aarch64\0-accel\0kvm,kernel-irqchip=on\0",
            "/proc/self/cmdline": b"qemu-system-x86_64\0-enable-kvm\0",  # not a pid directory
        },
    )
    found = running_vms(Host(tmp_path))
    assert [(p.pid, p.why) for p in found.others] == [
        (10, "-enable-kvm"),
        (11, "accel=kvm"),
        (13, "accel=kvm"),
    ]


def test_proc_scan_is_skipped_only_when_the_module_refcount_proves_no_user(tmp_path: Path) -> None:
    write_tree(tmp_path, intel_host("Y", extra={"/proc/777/cmdline": b"qemu-kvm\0-enable-kvm\0"}))
    host = Host(tmp_path)
    assert probe_host(host).running.others == ()
    assert not [e for e in host.manifest if e.target.startswith("/proc/777")]
    (tmp_path / "sys/module/kvm_intel/refcnt").write_text("1\n")
    assert [p.pid for p in probe_host(Host(tmp_path)).running.others] == [777]
    (tmp_path / "sys/module/kvm_intel/refcnt").write_text("garbage\n")
    assert [p.pid for p in probe_host(Host(tmp_path)).running.others] == [777]
