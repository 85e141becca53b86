"""`nestctl tree --local --inner VMID=FILE`: a lab's levels without an API (the lab's tie)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.tree.views import from_doctor
from tests.helpers import write_tree

#: What `nestctl doctor --all-nodes --json` prints on a nested node with nested off (trimmed).
INNER = {
    "host": {"vendor": "amd", "virt_flag": "svm"},
    "proxmox": True,
    "vms": [
        {"vmid": 201, "name": "l2-201", "node": "l1lab", "broken_link": "host",
         "findings": [{"code": "guest.host.nested-off", "severity": "error", "message": "m",
                       "fix": None}]},
    ],
    "findings": [
        {"code": "host.nested.off", "severity": "error", "message": "nested off", "fix": "x"},
        {"code": "guest.host.nested-off", "severity": "error", "message": "m", "fix": None},
        {"code": "vm.versions.pve-unknown", "severity": "info", "message": "m", "fix": None},
    ],
    "verdict": "not-ready",
}  # fmt: skip


def _outer(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "root",
        {
            "/etc/hostname": "l0lab\n",
            "/etc/pve/nodes/l0lab/qemu-server/101.conf": "cpu: host\nmemory: 2048\nname: l1\n",
        },
    )


def _tree(*args: str) -> tuple[int, Any]:
    res = CliRunner().invoke(cli, ["tree", *args, "--json"])
    return res.exit_code, json.loads(res.stdout)


def test_node_findings_are_the_host_layer_ones() -> None:
    view = from_doctor("vm101", INNER, ("local", 101))
    [node] = view.nodes
    assert node.node == "l1lab"  # where its VM configs are filed
    assert [f.code for f in node.findings] == ["host.nested.off"]
    assert node.verdict == "not-ready"
    [vm] = view.vms
    assert (vm.vmid, vm.broken_link, vm.verdict) == (201, "host", "not-ready")
    assert view.parent == ("local", 101)


def test_inner_level_hangs_under_its_vm(tmp_path: Path) -> None:
    inner = tmp_path / "l1.json"
    inner.write_text(json.dumps(INNER))
    _code, body = _tree("--root", str(_outer(tmp_path)), "--inner", f"101={inner}")
    [l0] = body["tree"]
    assert (l0["node"], l0["level"]) == ("l0lab", 0)
    [vm] = l0["children"]
    [l1] = vm["children"]
    assert (vm["vmid"], l1["target"], l1["node"], l1["level"]) == (101, "vm101", "l1lab", 1)
    assert [(c["vmid"], c["broken_link"]) for c in l1["children"]] == [(201, "host")]
    assert body["verdict"] == "not-ready"


def test_unreadable_inner_level_stays_in_the_tree(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    odd = tmp_path / "odd.json"  # a host finding without its severity
    odd.write_text(json.dumps({"vms": [], "findings": [{"code": "host.x", "message": "m"}]}))
    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps({"vms": "none"}))
    root = str(_outer(tmp_path))
    for path in (bad, odd, notes, tmp_path / "missing.json"):
        _code, body = _tree("--root", root, "--inner", f"101={path}")
        [inner] = body["tree"][0]["children"][0]["children"]
        assert inner["verdict"] == "unknown"
        assert [f["code"] for f in inner["findings"]] == ["tree.target.unreachable"]


def test_inner_needs_vmid_equals_file(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["tree", "--root", str(tmp_path), "--inner", "l1.json"])
    assert res.exit_code == 2
    assert "expected VMID=FILE" in res.output
    assert "Traceback" not in res.output


def test_an_inner_report_that_is_a_fifo_is_refused_not_read_forever(tmp_path: Path) -> None:
    from nestctl.tree.local import _inner_view  # noqa: PLC0415

    fifo = tmp_path / "l1.json"
    os.mkfifo(fifo)  # a read would block until a writer comes: there is none
    view = _inner_view(101, str(fifo))
    assert view.problem is not None
    assert "not a regular file" in view.problem.message
