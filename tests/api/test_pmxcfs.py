"""The cluster file system fast path: every config from one archive of /etc/pve, then the API
only for what pmxcfs does not hold (node facts, which VMs run)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from nestctl.api.client import ApiClient
from nestctl.vm.collect.api import collect_api
from nestctl.vm.collect.pmxcfs import read_archive
from nestctl.vm.facts import VmOptions
from nestctl.vm.remote import vm_report
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures", "tests.api.simclient"]

LAB = Path(__file__).resolve().parents[1] / "data" / "clusters" / "lab"


def pmxcfs_archive(extra: list[tarfile.TarInfo] | None = None) -> io.BytesIO:
    """What `tar -cf - etc/pve/nodes/*/qemu-server` on a lab node would send."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for conf in sorted(LAB.glob("nodes/*/etc/pve/qemu-server/*.conf")):
            node = conf.parts[-5]
            tar.add(conf, arcname=f"etc/pve/nodes/{node}/qemu-server/{conf.name}")
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    buf.seek(0)
    return buf


def test_archive_gives_every_config_with_its_node_and_refuses_the_rest() -> None:
    link = tarfile.TarInfo("etc/pve/nodes/pve1/qemu-server/999.conf")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    huge = tarfile.TarInfo("etc/pve/nodes/pve1/qemu-server/998.conf")
    huge.size = 2 * 1024 * 1024
    stray = tarfile.TarInfo("etc/passwd")
    stray.size = 3
    files = read_archive(pmxcfs_archive([link, huge, stray]))
    assert sorted(files.configs) == [101, 102, 103, 104, 201, 202, 301]
    assert files.configs[201].node == "pve2"
    assert files.configs[102].pending == {"cpu": "host"}
    assert 999 not in files.configs  # a symlink is not followed
    assert any("998.conf: larger than" in p for p in files.problems)


def test_truncated_archive_is_a_problem_not_a_crash() -> None:
    data = pmxcfs_archive().getvalue()[:3000]
    files = read_archive(io.BytesIO(data))
    assert files.problems


def test_the_fast_path_gives_the_same_report_with_no_request_per_vm(
    pve_sim: PveSim, sim_client: ApiClient
) -> None:
    client = sim_client
    opts = VmOptions(sections=False, all_nodes=True)
    over_api = vm_report(collect_api(client, opts), opts).to_json()
    pve_sim.clear_requests()
    fast = collect_api(client, opts, files=read_archive(pmxcfs_archive()))
    assert vm_report(fast, opts).to_json()["vms"] == over_api["vms"]
    paths = [r.path for r in pve_sim.requests]
    assert not any(p.endswith("/pending") for p in paths)
    assert len(paths) <= 2 + 5 * len(pve_sim.cluster.nodes)
