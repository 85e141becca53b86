"""`nestctl serve --prometheus URL`: the dashboard's node page knows a node's `nested` from a real
Prometheus fed by a fixture node's textfile, and names Prometheus as the source (issue 18)."""

from __future__ import annotations

import html as htmllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from nestctl.cli import main
from nestctl.cli import serve as serve_cli
from nestctl.web.app import create_app
from tests.api.clirun import nestctl
from tests.api.test_nested_evidence import textfile_target  # noqa: F401 - the fixture, reused
from tests.metrics.test_prometheus import free_port, query_until, start, stop, wait_http
from tests.metrics.tools import require
from tests.pvesim import PveSim
from tests.vm.vmtrees import node
from tests.web.conftest import BASE, token, wait_for


@pytest.fixture
def served(
    monkeypatch: pytest.MonkeyPatch, sim: PveSim
) -> Iterator[Callable[..., tuple[TestClient, str]]]:
    """`nestctl serve ARGS` as the command line wires it, served in-process (no uvicorn)."""
    clients: list[TestClient] = []

    def serve(*args: str) -> tuple[TestClient, str]:
        calls: list[tuple[Any, Any, Any]] = []
        monkeypatch.setattr(serve_cli, "run", lambda *a: calls.append(a))
        with pytest.raises(SystemExit) as exc:
            main(["serve", "--api", sim.url, "--fingerprint", sim.fingerprint, *args])
        assert exc.value.code in (0, None)
        settings, connector, tree = calls[0]
        client = TestClient(create_app(settings, connector, tree), base_url=BASE)
        client.__enter__()
        clients.append(client)
        page = client.get("/login")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        user, secret = token(sim)
        target = settings.targets[0].name
        data = {"csrf": csrf, "username": user, "password": secret, "target": target}
        assert client.post("/login", data=data, follow_redirects=False).status_code == 303
        return client, target

    yield serve
    for c in clients:
        c.__exit__(None, None, None)


def _nesting_line(client: TestClient, target: str, node_name: str) -> str:
    body = wait_for(client, f"/t/{target}/node/{node_name}", 'class="nested"', timeout=20)
    assert 'class="nested"' in body, body[:2000]
    line = body.split('<p class="nested">', 1)[1].split("</p>", 1)[0]
    return htmllib.unescape(line.replace("<code>", "").replace("</code>", ""))


def test_serve_prometheus_fills_a_nodes_nested_on_its_page(
    served: Callable[..., tuple[TestClient, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    textfile_target: tuple[str, Path],  # noqa: F811 - the imported fixture
) -> None:
    prometheus = require("prometheus")
    address, out = textfile_target
    # pve2 (qemu-server 8.3: no CPU-flag listing, no SSH) runs nestctl's textfile job:
    # kvm_amd nested=N there, as in the lab.
    root = node(tmp_path / "pve2", vendor="amd", nested="N", hostname="pve2")
    code, _out, err = nestctl(capsys, "metrics", "--textfile", str(out), "--root", str(root))
    assert code in (0, 1), err
    assert 'nestctl_host_nested_enabled{id="node/pve2"} 0' in (out / "nestctl.prom").read_text()
    # Without --prometheus nothing tells pve2's nested: unknown.
    client, target = served()
    assert _nesting_line(client, target, "pve2") == "Nesting (KVM nested): unknown"
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: node\n    static_configs: [{{targets: ['{address}']}}]\n"
    )
    server = start(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{prom}/-/ready", server)
        assert query_until(prom, 'nestctl_host_nested_enabled{id="node/pve2"}', 1)
        client, target = served("--prometheus", prom)
        line = _nesting_line(client, target, "pve2")
        assert line.startswith(
            f"Nesting (KVM nested): off, decided by prometheus {prom}: nestctl_host_nested_enabled"
        ), line
    finally:
        stop(server)
