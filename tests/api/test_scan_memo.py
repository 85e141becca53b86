"""The scan memo (issue 24): an unchanged VM costs its request and nothing more; a change is seen.

Every request is still sent (and checked against the schema at teardown): the memo saves only
what follows an unchanged reply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken
from nestctl.vm.collect import memo
from nestctl.vm.collect.api import ApiScan, collect_api
from nestctl.vm.facts import VmOptions
from nestctl.vm.remote import vm_report
from tests.pvesim import PveSim
from tests.pvesim.server import Fault

pytest_plugins = ["tests.pvesim.fixtures"]

OPTS = VmOptions(sections=False, all_nodes=True)


@pytest.fixture(autouse=True)
def no_memo() -> Iterator[None]:
    memo.forget()
    yield
    memo.forget()


def scan(sim: PveSim, token: str | None = None) -> tuple[ApiScan, dict[int, Any], int]:
    creds = ApiToken.parse(token or sim.root_token, source="test")
    with ApiClient(sim.url, creds, fingerprint=sim.fingerprint, retries=0) as api:
        got = collect_api(api, OPTS)
        sent = api.requests_sent
    payload = vm_report(got, OPTS).payload
    return got, {v["vmid"]: v for v in payload["vms"]}, sent


def facts_of(got: ApiScan) -> dict[int, object]:
    return {v.config.vmid: v for v in got.vms}


def test_an_unchanged_cluster_reuses_every_vm_and_reports_the_same(pve_sim: PveSim) -> None:
    first, report1, sent1 = scan(pve_sim)
    second, report2, sent2 = scan(pve_sim)
    assert sent2 == sent1  # every VM is still asked
    assert report2 == report1
    old, new = facts_of(first), facts_of(second)
    assert old
    assert all(new[vmid] is old[vmid] for vmid in old)  # reused, not rebuilt


def test_a_changed_config_or_run_state_is_read_afresh(pve_sim: PveSim) -> None:
    first, report1, _ = scan(pve_sim)
    assert report1[103]["cpu_arg"] is None or "vmx" not in (report1[103]["cpu_arg"] or "")
    pve_sim.request("PUT", "/nodes/pve1/qemu/103/config", {"cpu": "host"})
    upid = pve_sim.request("POST", "/nodes/pve1/qemu/103/status/start").data
    assert pve_sim.wait_task("pve1", upid)["exitstatus"] == "OK"
    second, report2, _ = scan(pve_sim)
    old, new = facts_of(first), facts_of(second)
    assert new[103] is not old[103]
    assert new[103].run.running is True  # type: ignore[attr-defined]
    assert report2[103]["cpu_arg"] != report1[103]["cpu_arg"]
    assert all(new[v] is old[v] for v in old if v != 103)


def test_one_users_scan_never_serves_another(pve_sim: PveSim) -> None:
    first, _, _ = scan(pve_sim)
    auditor = pve_sim.add_token("root@pam", "other", privsep=False)
    second, _, _ = scan(pve_sim, auditor)
    old, new = facts_of(first), facts_of(second)
    assert not any(new[v] is old[v] for v in old)


def test_a_vm_is_asked_as_soon_as_its_node_answers_not_after_all_its_node_requests(
    pve_sim: PveSim,
) -> None:
    # The node's package list comes slowly; its VMs' configs are asked meanwhile (issue 24:
    # the node phase no longer holds every VM back). The log records each request when answered.
    pve_sim.faults.append(Fault(kind="delay", path=r"^/nodes/pve1/apt/versions$", seconds=1.0))
    _, report, _ = scan(pve_sim)
    order = [r.path for r in pve_sim.requests if not r.harness]
    slow = order.index("/nodes/pve1/apt/versions")
    assert any(p.startswith("/nodes/pve1/qemu/") and p.endswith("/pending") for p in order[:slow])
    assert report[101]["cpu_arg"]  # and the facts still wait for the whole node
