"""`nestctl bench` and `bench compare` as users call them: output, plots, exit codes, bad input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from nestctl.bench import remote
from nestctl.bench.view import render_run
from nestctl.cli import main
from nestctl.machine import Host
from tests.bench.recorded import GUEST_TCG, HOST, load, variant
from tests.helpers import write_tree
from tests.host.scenarios import qemu_cmdline

Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def invoke(capsys: pytest.CaptureFixture[str]) -> Invoke:
    """Run the console entry point (with its error boundary): (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else 0), out, err

    return run


def test_compare_prints_the_ratios_and_flags_emulation_for_people(invoke: Invoke) -> None:
    rc, out, _ = invoke("bench", "compare", str(HOST), str(GUEST_TCG))
    assert rc == 1
    assert "software emulation (TCG)" in out
    assert "geometric mean, no-exit" in out
    assert "emulation: cpu, syscall" in out


def test_compare_json_is_the_contract(invoke: Invoke) -> None:
    rc, out, _ = invoke("bench", "compare", str(HOST), str(HOST), "--json")
    assert rc == 0
    report = json.loads(out)
    assert set(report) >= {"files", "workloads", "geomean"}
    assert set(report["geomean"]) >= {"no_exit", "exit_heavy"}
    for w in report["workloads"]:
        assert set(w) >= {"name", "ratios", "interval", "verdict", "cause"}


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_compare_draws_a_plot(invoke: Invoke, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"ratios{suffix}"
    rc, _, _ = invoke("bench", "compare", str(HOST), str(GUEST_TCG), "--plot", str(out))
    assert rc == 1
    data = out.read_bytes()
    if suffix == ".svg":
        assert b"<svg" in data
        assert b"page_touch_cold" in data
    else:
        assert data.startswith(b"\x89PNG")


def test_without_matplotlib_the_plot_says_what_to_install(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    rc, _, err = invoke(
        "bench", "compare", str(HOST), str(GUEST_TCG), "--plot", str(tmp_path / "x.png")
    )
    assert rc == 2
    assert "python3-matplotlib" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "not JSON"),
        ('{"hello": 1}', "not a nestctl bench result"),
        (None, "No such file"),
    ],
)
def test_bad_result_files_are_one_line_errors(
    invoke: Invoke, tmp_path: Path, content: str | None, message: str
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    rc, _, err = invoke("bench", "compare", str(HOST), str(bad))
    assert rc == 2
    assert message in err
    assert "Traceback" not in err


def test_usage_errors(invoke: Invoke, tmp_path: Path) -> None:
    rc, _, err = invoke("bench", "compare", str(HOST))
    assert rc == 2
    assert "at least two result files" in err
    rc, _, err = invoke("bench", "compare", str(HOST), str(HOST), "--plot", "x.pdf")
    assert rc == 2
    rc, _, err = invoke("bench", "--root", str(tmp_path))
    assert rc == 2
    assert "--root applies to --vm" in err
    rc, _, err = invoke("bench", "--only", "nope")
    assert rc == 2
    assert "unknown workload(s) nope" in err


def test_vm_without_an_agent_socket_says_so(invoke: Invoke, tmp_path: Path) -> None:
    root = write_tree(tmp_path / "root", {"/etc/hostname": "pve1\n"})
    rc, _, err = invoke("bench", "--vm", "100", "--quick", "--root", str(root))
    assert rc == 2
    assert "VM 100: guest agent: no agent socket" in err


_PIDS = {1: 101, 2: 102, 3: 103, 4: 104}


def test_levels_compares_every_reachable_vm_and_reports_the_others(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--levels under --root (nothing runs here): VMs 101 and 104 answer (recorded runs stand in
    for their agents), VM 102 has no python3; the comparison covers what answered and names the
    rest."""
    root = write_tree(
        tmp_path / "root",
        {
            "/etc/hostname": "pve1\n",
            "/var/run/qemu-server/101.pid": "1\n",
            "/var/run/qemu-server/101.qga": "",
            "/var/run/qemu-server/102.pid": "2\n",
            "/var/run/qemu-server/102.qga": "",
            "/var/run/qemu-server/103.pid": "3\n",  # no agent socket: not a candidate
            "/var/run/qemu-server/104.pid": "4\n",
            "/var/run/qemu-server/104.qga": "",
            "/var/run/qemu-server/105.pid": "5\n",  # stale: process 5 is gone
            "/var/run/qemu-server/105.qga": "",
            **{f"/proc/{pid}/cmdline": qemu_cmdline(vmid) for pid, vmid in _PIDS.items()},
        },
    )
    # The VMs `nestctl host` and `vm` find running (one implementation), with an agent socket.
    assert remote.running_vmids(Host(root)) == ([101, 102, 104], ())
    recorded = {101: variant(load(HOST), {}, level="L1"), 104: load(GUEST_TCG)}

    def fake_bench_vm(host: Any, vmid: int, host_where: Any, **_: Any) -> dict[str, Any]:
        if vmid == 102:
            raise remote.RemoteBenchError("VM 102: no python3 in the guest (install python3 there)")
        return recorded[vmid]

    monkeypatch.setattr(remote, "bench_vm", fake_bench_vm)
    saved = tmp_path / "saved"
    rc, out, err = invoke("bench", "--levels", "--root", str(root), "--json", "-o", str(saved))
    assert rc == 1  # VM 104 runs under emulation
    assert "VM 102: no python3" in err
    report = json.loads(out)
    assert [f["path"] for f in report["files"]] == ["vm-101", "vm-104"]
    assert report["skipped"] == [
        {"vmid": 102, "reason": "VM 102: no python3 in the guest (install python3 there)"}
    ]
    assert report["workloads"][0]["verdict"] == "emulation"
    assert sorted(p.name for p in saved.iterdir()) == ["vm-101.json", "vm-104.json"]


def test_disk_cache_modes_as_proxmox_writes_them() -> None:
    conf = {
        "scsi0": "local-lvm:vm-101-disk-0,cache=unsafe,size=32G",
        "virtio1": "local-lvm:vm-101-disk-1,size=8G",
        "ide2": "local:iso/debian.iso,media=cdrom",
        "sata0": "none,media=cdrom",
        "scsihw": "virtio-scsi-pci",
        "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0",
    }
    assert remote.disk_caches(conf) == {"scsi0": "unsafe", "virtio1": "none"}


def test_a_hostile_result_from_a_guest_renders_without_a_traceback() -> None:
    doc = {
        "where": {"steal": "lots", "chain": [1], "ept_npt": 3},
        "results": [
            {"name": "cpu", "status": "ok", "median": "fast", "unit": None},
            {"name": "cpuid", "status": "ok", "median": 3.5, "spread": 0.1, "cycles": "many"},
            {"name": "[bold]x", "status": "not-measurable", "reason": 42},
        ],
    }
    console = Console(record=True, width=200)
    render_run(doc, console)
    text = console.export_text()
    assert "cpuid" in text
    assert "[bold]x" in text  # markup in a guest's text is printed, not interpreted
    assert "42" in text


def test_levels_says_when_the_pid_files_cannot_be_listed(tmp_path: Path) -> None:
    # An unlistable pid directory: the VMs there are unknown, not "none run".
    root = write_tree(
        tmp_path / "root",
        {"/etc/hostname": "pve1\n", "/var/run/qemu-server": "not a directory"},
    )
    vmids, problems = remote.running_vmids(Host(root))
    assert vmids == []
    assert len(problems) == 1
    assert problems[0].startswith("/var/run/qemu-server")
    assert problems[0].endswith("the VMs there are unknown")
