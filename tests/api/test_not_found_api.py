"""An unknown VMID over the API: the same words and exit code (2) from `vm`, `vm enable` and
`vm disable` as locally (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.clirun import nestctl_json
from tests.pvesim import PveSim

pytest_plugins = ["tests.pvesim.fixtures"]


@pytest.mark.parametrize(
    "verb",
    [["vm", "1011"], ["vm", "enable", "1011", "--profile", "linux-kvm"], ["vm", "disable", "1011"]],
)
def test_no_vm_1011_on_this_cluster(
    verb: list[str], pve_sim: PveSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text(pve_sim.root_token)
    api = ["--api", pve_sim.url, "--fingerprint", pve_sim.fingerprint, "--token-file", str(token)]
    code, body = nestctl_json(capsys, *verb, *api)
    found = [f for f in body["findings"] if f["code"] == "vm.not-found"]
    assert [f["message"] for f in found] == ["no VM 1011 on this cluster (did you mean 101?)"]
    assert (code, body["verdict"]) == (2, "unknown")
    assert not any(r.method == "PUT" for r in pve_sim.requests)
