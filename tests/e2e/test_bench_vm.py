"""`nestctl bench --vm` end to end: a real guest under QEMU TCG with Python, the real qemu-ga.

The host side is a fake Proxmox node (pid file, -cpu, agent socket pointing at the booted guest);
everything the guest does is real: the runner zip goes in with guest-file-write, runs with the
guest's own python3 through guest-exec, and the result file comes back with guest-file-read.
Compared with a real run on this machine, the guest's numbers must be flagged as emulation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.bench.feed import recent_results
from nestctl.cli import cli
from nestctl.machine import Host
from tests.e2e.guest_image import GuestUnavailableError, build_python_guest
from tests.e2e.guest_vm import BootedGuest, BootFailedError, start_guest, wait_ready
from tests.e2e.pve_root import make_pve_root
from tests.e2e.required import give_up, require_program
from tests.helpers import write_tree
from tests.vm.vmtrees import AMD_CPUINFO, qemu_argv

pytestmark = pytest.mark.e2e

VMID = 100
CPU = "qemu64"


@pytest.fixture(scope="module")
def python_guest() -> Iterator[BootedGuest]:
    # CI sets NESTCTL_E2E_REQUIRED: there a guest that cannot be built fails instead of skipping.
    require_program("qemu-system-x86_64")
    try:
        image = build_python_guest()
    except GuestUnavailableError as exc:
        give_up(f"cannot build the e2e guest with Python: {exc}")
    guest = start_guest(image, CPU)
    try:
        try:
            wait_ready([guest])
        except BootFailedError as exc:
            pytest.fail(str(exc))
        yield guest
    finally:
        guest.stop()


def pve_node(tmp_path: Path, guest: BootedGuest) -> Path:
    """Node pve1 (bare metal, AMD, kvm_amd with npt on) running VM 100 under TCG."""
    argv = [*qemu_argv(VMID, CPU), "-accel", "tcg"]
    root = make_pve_root(tmp_path, VMID, CPU, guest.qga_socket, pid=guest.pid, argv=argv)
    pid = guest.pid
    write_tree(
        root,
        {
            f"/proc/{pid}/stat": f"{pid} (kvm) S 1 {pid} {pid} 0 -1 4194560",
            "/proc/cpuinfo": AMD_CPUINFO,
            "/sys/module/kvm_amd/parameters/nested": "1\n",
            "/sys/module/kvm_amd/parameters/npt": "1\n",
            "/etc/hostname": "pve1\n",
        },
    )
    return root


def run_cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_bench_vm_runs_in_the_guest_and_is_flagged_as_emulation(
    tmp_path: Path, python_guest: BootedGuest
) -> None:
    root = pve_node(tmp_path, python_guest)
    guest_file, host_file = tmp_path / "guest.json", tmp_path / "host.json"

    args = ["bench", "--vm", str(VMID), "--quick", "--root", str(root), "-o", str(guest_file)]
    rc, _ = run_cli([*args, "--save"])
    assert rc == 0
    guest = json.loads(guest_file.read_text())
    # --save keeps it where doctor and the exporter look (under the node's root).
    assert recent_results(Host(root)) == [guest]
    where = guest["where"]
    # Measured inside: QEMU's TCG answers CPUID 0x40000000 with its own signature.
    assert where["accel"] == "tcg"
    assert where["hypervisor_signature"] == "TCGTCGTCGTCG"
    assert where["cpu_model"].startswith("QEMU Virtual CPU")
    # Labelled with its chain by the host: node, VM, the running -cpu; one level below pve1 (L0).
    assert where["chain"]["node"] == "pve1"
    assert where["chain"]["vmid"] == VMID
    assert where["chain"]["cpu"] == CPU
    assert where["chain"]["host_ept_npt"] is True
    assert where["level"] == "L1"
    results = {r["name"]: r for r in guest["results"]}
    assert results["cpuid"]["status"] == "ok"  # executable memory works in the guest
    assert all(r["status"] == "ok" and r["median"] > 0 for r in results.values()), results
    assert "no block device" in results["fsync"]["note"]  # the initramfs is rootfs: no disk

    rc, _ = run_cli(["bench", "--quick", "-o", str(host_file)])
    assert rc == 0
    rc, out = run_cli(["bench", "compare", str(host_file), str(guest_file), "--json"])
    report = json.loads(out)
    assert rc == 1  # emulation is a finding
    assert report["files"][1]["emulation"] is True
    assert report["files"][0]["emulation"] is False
    for w in report["workloads"]:
        assert w["verdict"] == "emulation", w
        assert "software emulation" in w["cause"]
