"""One cluster, every output, one verdict (issue 18): `doctor`, `vm`, `tree` (JSON), the
metrics and the dashboard's pages say the same intent, verdict and first broken link of each VM,
and the exit codes agree.

The simulated cluster (tests/data/clusters/lab, edited in memory) holds:

* ordinary VMs (`cpu: host` for speed, Windows, a default CPU): "not nested", neutral;
* a VM tagged `nested` whose default CPU gives no vmx: not ready, first broken link config;
* a VM asking explicitly (`flags=+nested-virt`) on a node whose `nested` is on: ready;
* a VM with a raw `+svm` flag Proxmox refuses: not ready at its config;
* VM 101 running an inner Proxmox (target "inner", `parent = "outer/101"`): intent inner-layer;
* a VM on an offline node: unknown, "could not read" (never "refused by Proxmox").
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from nestctl.web.app import create_app
from nestctl.web.backend import PveConnector
from nestctl.web.engine import tree_builder
from nestctl.web.settings import ServeSettings, TargetSpec
from tests.api.clirun import nestctl, nestctl_json
from tests.metrics.tools import parse
from tests.pvesim import PveSim, load_cluster
from tests.pvesim.cluster import Vm
from tests.pvesim.vmconf import parse_conf
from tests.web.conftest import BASE, csrf_of

CLUSTERS = Path(__file__).resolve().parents[1] / "data" / "clusters"

#: vmid -> (wants_nested, intent, verdict, broken_link): what every output must say.
EXPECTED: dict[int, tuple[bool | None, str, str, str | None]] = {
    101: (True, "inner-layer", "ready", None),
    102: (False, "none", "not-nested", None),
    103: (True, "tag", "not-ready", "config"),
    104: (False, "none", "not-nested", None),
    105: (True, "config", "ready", None),
    201: (True, "config", "not-ready", "config"),
    202: (False, "none", "not-nested", None),
    301: (None, "none", "unknown", None),
}


@pytest.fixture
def sims() -> Iterator[tuple[PveSim, PveSim]]:
    outer = load_cluster(CLUSTERS / "lab")
    pve1 = outer.nodes["pve1"]
    outer.vm(103).conf.main["tags"] = "nested"  # meant to nest; its default kvm64 has no vmx
    outer.vm(103).conf.touch()
    pve1.vms[105] = Vm(105, "pve1", parse_conf("cpu: host,flags=+nested-virt\nname: ci\n"))
    with PveSim(outer) as o, PveSim(load_cluster(CLUSTERS / "lab-inner")) as i:
        yield o, i
        o.assert_conformant()
        i.assert_conformant()


def config_file(tmp_path: Path, outer: PveSim, inner: PveSim) -> Path:
    lines = []
    for name, sim, extra in (("outer", outer, ""), ("inner", inner, 'parent = "outer/101"\n')):
        token = tmp_path / f"{name}.token"
        token.write_text(sim.root_token + "\n")
        lines.append(
            f'[targets.{name}]\nurl = "{sim.url}"\ntoken_file = "{token}"\n'
            f'fingerprint = "{sim.fingerprint}"\n{extra}'
        )
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines))
    return path


def from_vm_objects(vms: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    return {
        v["vmid"]: (v["wants_nested"], v["intent"], v["verdict"], v["broken_link"]) for v in vms
    }


def from_metrics(text: str) -> dict[int, tuple[Any, ...]]:
    samples = parse(text)
    out: dict[int, list[Any]] = {}
    for (name, labels), value in samples.items():
        d = dict(labels)
        if not d.get("id", "").startswith("qemu/"):
            continue
        vmid = int(d["id"].split("/")[1])
        row = out.setdefault(vmid, [None, "none", None, None])
        if name == "nestctl_vm_wants_nested":
            row[0], row[1] = value == 1, d["intent"]
        elif name == "nestctl_vm_verdict" and value == 1:
            row[2] = d["verdict"]
    return {k: tuple(v[:3]) for k, v in out.items()}


def dashboard_verdicts(outer: PveSim, inner: PveSim) -> dict[int, tuple[str, str | None, str]]:
    """Each outer VM's page: (badge, first broken link, page html)."""
    settings = ServeSettings(
        [
            TargetSpec("outer", outer.url, outer.fingerprint),
            TargetSpec("inner", inner.url, inner.fingerprint, parent="outer/101"),
        ]
    )
    app = create_app(settings, PveConnector(timeout=5), tree_builder())
    out: dict[int, tuple[str, str | None, str]] = {}
    with TestClient(app, base_url=BASE) as client:
        for name, sim in (("outer", outer), ("inner", inner)):
            userid, _, secret = sim.root_token.partition("=")
            page = client.get("/login")
            data = {"csrf": csrf_of(page.text), "username": userid, "password": secret,
                    "target": name}  # fmt: skip
            client.post("/login", data=data, follow_redirects=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # both targets read (the inner hangs under VM 101)
            html = client.get("/").text
            if "pve-inner" in html and "L1" in html and "Reading" not in html:
                break
            time.sleep(0.1)
        for vm in outer.cluster.all_vms():
            html = client.get(f"/t/outer/vm/{vm.node}/{vm.vmid}").text
            badge = re.search(r'<h1>.*?<span class="badge v-([a-z-]+)">', html, re.S)
            link = re.search(r"First broken link: ([a-z]+)", html)
            out[vm.vmid] = (badge.group(1) if badge else "none", link and link.group(1), html)
    return out


def test_one_cluster_every_output_one_verdict(
    sims: tuple[PveSim, PveSim], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outer, inner = sims
    cfg = ["--config", str(config_file(tmp_path, outer, inner))]
    # CLI JSON: doctor and vm over the API.
    doctor_code, doctor = nestctl_json(capsys, "doctor", "--target", "outer", "--json", *cfg)
    vm_code, vm = nestctl_json(capsys, "vm", "--target", "outer", "--json", *cfg)
    assert from_vm_objects(doctor["vms"]) == EXPECTED
    assert from_vm_objects(vm["vms"]) == EXPECTED
    assert doctor_code == vm_code == 1  # 103 and 201 want nesting and cannot have it
    # The offline node's VM: its config could not be read, and nobody refused anything.
    [vm301] = [v for v in doctor["vms"] if v["vmid"] == 301]
    assert "could not read" in vm301["findings"][0]["message"]
    _code, text, _err = nestctl(capsys, "vm", "--target", "outer", *cfg)
    block = text[text.index("VM 301") : text.index("Findings")]
    assert re.search(r"-cpu \(config\)\s+could not read", block)
    assert "refused" not in block
    # tree JSON: the same rows (the inner target hangs under VM 101).
    tree_code, tree = nestctl_json(capsys, "tree", "--json", *cfg)
    rows = {
        v["vmid"]: (v["wants_nested"], v["intent"], v["verdict"], v["broken_link"])
        for n in tree["tree"]
        if n["target"] == "outer"
        for v in n["children"]
        if v["kind"] == "vm"  # containers are children too (issue 19)
    }
    assert rows == EXPECTED
    assert tree_code == 1
    # Metrics (textfile over the API): the same intent and verdict per VM.
    out = tmp_path / "textfile"
    out.mkdir()
    code, _o, err = nestctl(capsys, "metrics", "--textfile", str(out), "--target", "outer", *cfg)
    assert code == 0, err
    metrics = from_metrics((out / "nestctl.prom").read_text())
    assert metrics == {k: v[:3] for k, v in EXPECTED.items() if v[0] is not None} | {
        301: (None, "none", None)  # its node is down: up 0, no VM series
    }
    # The dashboard's pages: the same badge and first broken link; no red for a VM that does
    # not want nesting.
    pages = dashboard_verdicts(outer, inner)
    for vmid, (_wants, _intent, verdict, link) in EXPECTED.items():
        badge, shown_link, html = pages[vmid]
        assert (badge, shown_link) == (verdict, link), vmid
        if verdict == "not-nested":
            assert "link-broken" not in html, vmid
            assert "v-not-ready" not in html, vmid
