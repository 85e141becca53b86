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
from tests.privileges import needs_root
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


def _local_client(sim: PveSim, tmp_path: Path, key_file: Path) -> tuple[TestClient, str]:
    host = Host(tmp_path, runner=PveshOnSim(sim))
    key = write_key(key_file)
    connector = LocalConnector(host, key, is_root=True, key_file=key_file)
    app = create_app(ServeSettings([local_target()]), connector, tree_builder())
    return TestClient(app, base_url=BASE), key


def test_the_key_is_single_use_and_renewed(sim, tmp_path):
    key_file = tmp_path / "run" / "serve.key"
    client, key = _local_client(sim, tmp_path, key_file)
    with client:
        assert _login(client, f" {key}\n").status_code == 401  # exact, no stripping
        assert _login(client, key).status_code == 303
        page = client.get("/")
        client.post("/logout", data={"csrf": csrf_of(page.text)})
        assert _login(client, key).status_code == 401  # used up
        fresh = key_file.read_text().strip()
        assert fresh != key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert _login(client, fresh).status_code == 303


def test_two_logins_at_once_with_one_key_admit_one(sim, tmp_path):
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from nestctl.web.backend import LoginError  # noqa: PLC0415

    connector = LocalConnector(Host(tmp_path, runner=PveshOnSim(sim)), "k", is_root=True)

    def one(_i: int) -> bool:
        try:
            connector.login(local_target(), "root@pam", "k", "", None)
        except LoginError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(one, range(8))) == 1


def test_an_open_key_directory_is_made_private(tmp_path):
    directory = tmp_path / "keys"
    directory.mkdir()
    directory.chmod(0o777)
    write_key(directory / "serve.key")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_key_directory_of_another_user_or_a_link_is_refused(tmp_path):
    import os  # noqa: PLC0415

    from nestctl.web.local import KeyFileError  # noqa: PLC0415

    needs_root()  # giving a directory to another user needs root (CI runs as root)
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, os.geteuid() + 1, -1)
    with pytest.raises(KeyFileError, match="belongs to uid"):
        write_key(theirs / "serve.key")
    assert not (theirs / "serve.key").exists()
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(KeyFileError, match="not a directory"):
        write_key(tmp_path / "link" / "serve.key")
