"""Local mode: the node's own `pvesh` (here answered by the simulator), a root-only login key,
and the nested parameter read from this node's sysfs."""

from __future__ import annotations

import json
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from nestctl.machine import CommandResult, CommandStatus, Host
from nestctl.web.app import create_app
from nestctl.web.engine import tree_builder
from nestctl.web.local import LocalConnector, PveshApi, local_target, nested_reader, write_key
from nestctl.web.settings import ServeSettings
from tests.helpers import write_tree
from tests.pvesim import PveSim
from tests.web.conftest import BASE, csrf_of, wait_for

METHODS = {"get": "GET", "create": "POST", "set": "PUT", "delete": "DELETE"}


class PveshOnSim:
    """Runs `pvesh VERB PATH --k v ... --output-format json` as the simulator's root would."""

    def __init__(self, sim: PveSim) -> None:
        self.sim = sim
        self.argvs: list[tuple[str, ...]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 30.0,
        stdin: str | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        args = tuple(argv)
        self.argvs.append(args)
        assert args[0] == "pvesh"
        assert args[-2:] == ("--output-format", "json")
        rest = args[3:-2]
        params = {rest[i].removeprefix("--"): rest[i + 1] for i in range(0, len(rest), 2)}
        r = self.sim.request(METHODS[args[1]], args[2], params, harness=False)
        if r.status != 200:
            body = r.json if r.body else {}
            message = (body or {}).get("message") or r.reason
            return CommandResult(args, CommandStatus.FAILED, 255, "", f"{message}\n")
        return CommandResult(args, CommandStatus.OK, 0, json.dumps(r.data) + "\n", "")


@pytest.fixture
def local(sim: PveSim, tmp_path: Path):
    write_tree(
        tmp_path,
        {"etc/hostname": "pve1\n", "sys/module/kvm_intel/parameters/nested": "Y\n"},
    )
    runner = PveshOnSim(sim)
    host = Host(tmp_path, runner=runner)
    app = create_app(
        ServeSettings([local_target()]),
        LocalConnector(host, "the-key", is_root=True),
        tree_builder(nested_reader=nested_reader(host)),
    )
    with TestClient(app, base_url=BASE) as client:
        yield client, runner


def _login(client: TestClient, password: str):
    page = client.get("/login")
    data = {"csrf": csrf_of(page.text), "username": "root@pam", "password": password}
    return client.post("/login", data=data | {"target": "local"}, follow_redirects=False)


def test_local_mode_shows_the_tree_and_reads_nested_from_sysfs(local):
    client, runner = local
    assert _login(client, "the-key").status_code == 303
    html = wait_for(client, "/tree", "epyc-nested")
    assert "201 epyc-nested" in html
    assert "node pve1: the host's live nested value is unknown" not in html
    assert "pve2 is another node" in html  # only this node's sysfs is read here
    assert all(a[0] == "pvesh" for a in runner.argvs)


def test_local_mode_starts_a_vm_through_pvesh(local, sim):
    client, runner = local
    _login(client, "the-key")
    page = client.get("/t/local/vm/pve1/103/power/start")
    r = client.post(
        "/t/local/vm/pve1/103/power/start",
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    done = client.get(r.headers["location"] + "/wait").json()
    assert done["ok"] is True
    assert (
        "pvesh",
        "create",
        "/nodes/pve1/qemu/103/status/start",
        "--output-format",
        "json",
    ) in runner.argvs
    assert sim.cluster.vm(103).status == "running"


def test_local_mode_admits_only_root_with_the_key(local, sim, tmp_path):
    client, _ = local
    assert _login(client, "wrong").status_code == 401
    host = Host(tmp_path, runner=PveshOnSim(sim))
    with pytest.raises(Exception, match="run nestctl serve --local as root"):
        LocalConnector(host, "the-key", is_root=False).login(
            local_target(), "root@pam", "the-key", "", None
        )


def test_pvesh_errors_carry_proxmox_text(sim, tmp_path):
    api = PveshApi(Host(tmp_path, runner=PveshOnSim(sim)))
    with pytest.raises(Exception, match=r"does not exist|not running"):
        api.request("POST", "/nodes/pve1/qemu/999/status/stop")


def test_the_key_file_is_root_only(tmp_path):
    path = tmp_path / "run" / "nestctl" / "serve.key"
    key = write_key(path)
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert write_key(path) != key  # a new key each start
