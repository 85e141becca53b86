"""Reading a running VM's QEMU command line as Proxmox does (pid file -> /proc/<pid>/cmdline)."""

from __future__ import annotations

from pathlib import Path

from nestctl.machine import Host
from nestctl.vm.running import check_running, is_qemu_program, last_option, machine_type
from tests.helpers import write_tree


def cmdline(*argv: str) -> bytes:
    return ("\0".join(argv) + "\0").encode()


def qemu_argv(vmid: int, *extra: str, cpu: str = "kvm64,enforce") -> list[str]:
    return [
        "/usr/bin/kvm",
        "-id",
        str(vmid),
        "-name",
        f"vm{vmid},debug-threads=on",
        "-pidfile",
        f"/var/run/qemu-server/{vmid}.pid",
        "-daemonize",
        "-cpu",
        cpu,
        "-machine",
        "type=pc-q35-9.2+pve1,kernel-irqchip=split",
        *extra,
    ]


def running_tree(tmp_path: Path, vmid: int, pid: int, argv: list[str]) -> Host:
    write_tree(
        tmp_path,
        {
            f"/var/run/qemu-server/{vmid}.pid": f"{pid}\n",
            f"/proc/{pid}/cmdline": cmdline(*argv),
            f"/proc/{pid}/stat": f"{pid} (kvm) S 1 {pid} {pid} 0 -1",
        },
    )
    return Host(tmp_path)


def test_running_vm_gives_its_cpu_and_machine(tmp_path: Path) -> None:
    host = running_tree(tmp_path, 100, 4242, qemu_argv(100, cpu="host,+kvm_pv_eoi,+vmx"))
    check = check_running(host, 100)
    assert check.running
    assert check.vm is not None
    assert check.vm.pid == 4242
    assert check.vm.cpu_arg == "host,+kvm_pv_eoi,+vmx"
    assert check.vm.machine == "pc-q35-9.2+pve1"


def test_last_cpu_wins_as_in_qemu(tmp_path: Path) -> None:
    # An `args: -cpu ...` lands after Proxmox's own -cpu; QEMU (and Proxmox) use the last one.
    argv = qemu_argv(101, "-cpu", "host,-hypervisor", cpu="kvm64,enforce")
    host = running_tree(tmp_path, 101, 77, argv)
    vm = check_running(host, 101).vm
    assert vm is not None
    assert vm.cpu_arg == "host,-hypervisor"


def test_no_pid_file_means_not_running(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/etc/hostname": "pve\n"})
    check = check_running(Host(tmp_path), 100)
    assert not check.running
    assert check.reason == "no pid file"


def test_stale_pid_file_pointing_at_another_program(tmp_path: Path) -> None:
    host = running_tree(tmp_path, 100, 55, ["/usr/sbin/sshd", "-D"])
    check = check_running(host, 100)
    assert not check.running
    assert "not QEMU" in (check.reason or "")


def test_pid_file_of_another_vm_is_not_this_vm(tmp_path: Path) -> None:
    # The pid was reused by the QEMU of VM 102: its -pidfile names 102.pid, not 100.pid.
    host = running_tree(tmp_path, 100, 66, qemu_argv(102))
    check = check_running(host, 100)
    assert not check.running
    assert "does not use /var/run/qemu-server/100.pid" in (check.reason or "")


def test_dead_process_and_zombie(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/var/run/qemu-server/100.pid": "999\n"})
    assert "gone" in (check_running(Host(tmp_path), 100).reason or "")
    host = running_tree(tmp_path, 103, 88, qemu_argv(103))
    write_tree(tmp_path, {"/proc/88/stat": "88 (kvm) Z 1 88 88"})
    assert not check_running(host, 103).running


def test_run_dir_without_var_prefix(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "/run/qemu-server/104.pid": "12\n",
            "/proc/12/cmdline": cmdline(*qemu_argv(104)),
        },
    )
    assert check_running(Host(tmp_path), 104).running


def test_garbage_pid_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"/var/run/qemu-server/100.pid": "not a pid"})
    check = check_running(Host(tmp_path), 100)
    assert not check.running
    assert "holds no pid" in (check.reason or "")


def test_qemu_program_names() -> None:
    assert is_qemu_program("/usr/bin/kvm")
    assert is_qemu_program("/usr/bin/qemu-system-x86_64")
    assert not is_qemu_program("/usr/bin/python3")
    assert last_option(["kvm", "-cpu", "a", "-cpu", "b"], "cpu") == "b"
    assert last_option(["kvm", "-cpu"], "cpu") is None
    assert machine_type("pc-i440fx-5.1+pve0") == "pc-i440fx-5.1+pve0"
    assert machine_type("accel=tcg,type=q35") == "q35"
