""" "Make nested-ready": the plan is shown first, then applied with the digest it was made from."""

from __future__ import annotations

import re

from tests.web.conftest import ALICE, csrf_of, login, token

URL = "/t/lab/vm/pve1/103/enable"


def _digest(html: str) -> str:
    m = re.search(r'name="digest" value="([0-9a-f]+)"', html)
    assert m, "the plan carries the config digest"
    return m.group(1)


def test_plan_then_apply_with_the_digest(client, sim):
    login(client, *token(sim))
    page = client.get(f"{URL}?profile=linux-kvm")
    assert page.status_code == 200
    assert "Plan for linux-kvm" in page.text
    assert "<td>cpu</td>" in page.text
    assert sim.cluster.vm(103).conf.main.get("cpu") in (None, "kvm64")  # nothing changed yet
    r = client.post(
        URL, data={"csrf": csrf_of(page.text), "profile": "linux-kvm", "digest": _digest(page.text)}
    )
    assert r.status_code == 200, r.text
    assert "linux-kvm applied" in r.text
    puts = [q for q in sim.requests if q.method == "PUT" and q.path.endswith("/103/config")]
    assert len(puts) == 1
    assert str(puts[0].params["digest"]) == _digest(page.text)
    assert sim.cluster.vm(103).conf.main.get("cpu") == "host"


def test_a_config_changed_after_the_plan_was_shown_is_refused(client, sim):
    login(client, *token(sim))
    page = client.get(f"{URL}?profile=linux-kvm")
    r = sim.request("PUT", "/nodes/pve1/qemu/103/config", {"memory": "4096"}, token=sim.root_token)
    assert r.status == 200
    r = client.post(
        URL, data={"csrf": csrf_of(page.text), "profile": "linux-kvm", "digest": _digest(page.text)}
    )
    assert r.status_code == 409
    assert "The config changed since the plan was shown" in r.text
    assert "detected modified configuration" in r.text  # Proxmox's words, in a sentence
    assert "HTTP 500" not in r.text
    assert sim.cluster.vm(103).conf.main.get("cpu") != "host"


def test_enable_without_the_privilege_shows_the_403(client, sim):
    login(client, *ALICE)
    page = client.get(f"{URL}?profile=linux-kvm")
    r = client.post(
        URL, data={"csrf": csrf_of(page.text), "profile": "linux-kvm", "digest": _digest(page.text)}
    )
    assert r.status_code == 403
    assert "VM.Config" in r.text
    assert sim.cluster.vm(103).conf.main.get("cpu") != "host"


def _form(page_html: str) -> dict[str, str]:
    data = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page_html))
    assert data.get("snapshot") == "1", "the plan offers the snapshot first"
    return data | {"profile": "linux-kvm"}


def test_make_nested_ready_takes_a_snapshot_first_and_offers_the_way_back(client, sim):
    login(client, *token(sim))
    page = client.get(f"{URL}?profile=linux-kvm")
    assert 'id="snapshot-first"' in page.text
    r = client.post(URL, data=_form(page.text))
    assert r.status_code == 200, r.text
    writes = [(q.method, q.path) for q in sim.requests if q.method in ("POST", "PUT")]
    assert writes[-2:] == [
        ("POST", "/nodes/pve1/qemu/103/snapshot"),
        ("PUT", "/nodes/pve1/qemu/103/config"),
    ]
    name = next(n for n in sim.cluster.vm(103).conf.sections if n.startswith("nestctl-before-"))
    assert f'href="/t/lab/vm/pve1/103/snapshots/{name}/rollback"' in r.text
    assert "Roll back to it" in r.text
    assert sim.cluster.vm(103).conf.main["cpu"] == "host"


def test_make_nested_ready_changes_nothing_when_the_snapshot_fails(client, sim):
    login(client, *token(sim))
    sim.cluster.vm(103).task_errors["snapshot"] = "rbd error: pool full"
    page = client.get(f"{URL}?profile=linux-kvm")
    r = client.post(URL, data=_form(page.text))
    assert r.status_code == 409
    assert "Not changed." in r.text
    assert "rbd error: pool full" in r.text
    assert not any(q.method == "PUT" for q in sim.requests)
    assert sim.cluster.vm(103).conf.main.get("cpu") != "host"


def test_a_storage_without_snapshots_is_said_on_the_plan(client, sim):
    login(client, *token(sim))
    sim.cluster.edit_config(103, scsi0="local:103/vm-103-disk-0.raw,size=8G")
    page = client.get(f"{URL}?profile=linux-kvm")
    assert 'id="no-snapshot"' in page.text
    assert "only qcow2 images on such a storage can take snapshots" in page.text
