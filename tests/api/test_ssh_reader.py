"""What `--ssh` makes of the node's answer: nestctl's JSON, or raw sysfs; never a guess."""

from __future__ import annotations

import json

from nestctl.api.client import ApiClient
from nestctl.vm.collect.api import NestedReading, collect_api
from nestctl.vm.collect.ssh import parse_remote
from nestctl.vm.facts import VmOptions
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures", "tests.api.simclient"]

UUID = "5B0A3C1E-1D2F-4B8E-9C61-0E0F2A7B1D01"


def test_nestctl_host_json_on_the_node() -> None:
    body = {"host": {"nested": {"live": True, "after_reboot": False, "decided_by": "/etc/x"}}}
    reading = parse_remote(f"product_uuid {UUID}\n" + json.dumps(body))
    assert (reading.live, reading.after_reboot, reading.decided_by) == (True, False, "/etc/x")
    assert reading.product_uuid == UUID.lower()


def test_raw_sysfs_values() -> None:
    assert parse_remote("product_uuid \nkvm_intel Y\n").live is True
    assert parse_remote("kvm_amd 0\n").live is False


def test_nothing_readable_is_unknown_with_a_reason() -> None:
    reading = parse_remote("product_uuid \n")
    assert reading.live is None
    assert reading.problem
    broken = parse_remote('{"host": [')
    assert broken.live is None
    assert broken.problem


def test_the_reader_is_asked_per_node_with_its_address(
    pve_sim: PveSim, sim_client: ApiClient
) -> None:
    client = sim_client
    asked: dict[str, str | None] = {}

    def reader(node: str, address: str | None) -> NestedReading:
        asked[node] = address
        return NestedReading(True, True, "/etc/modprobe.d/kvm.conf")

    scan = collect_api(client, VmOptions(all_nodes=True), nested_reader=reader)
    assert asked == {"pve1": "192.0.2.11", "pve2": "192.0.2.12"}  # pve3 is offline
    report = {r.node: r for r in scan.node_reports}
    assert report["pve1"].nested.to_json() == {
        "live": True, "after_reboot": True, "decided_by": "/etc/modprobe.d/kvm.conf"
    }  # fmt: skip
