"""`nestctl exporter`: a fresh check per scrape, the cached page within --min-interval, never a
half-built page, failures as failure series."""

from __future__ import annotations

import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from nestctl.cli.common import NestctlError
from nestctl.cli.exporter import DEFAULT_LISTEN, parse_listen
from nestctl.metrics.exporter import Exporter, make_server
from nestctl.metrics.run import Checked
from tests.metrics.tools import cluster_body, parse, value


class CountingCheck:
    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self.calls = 0
        self.fail = fail
        self.delay = delay

    def __call__(self) -> Checked:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("node unreachable")
        return Checked(cluster_body())


@pytest.fixture
def serve() -> Iterator[Any]:
    servers = []

    def start(exporter: Exporter) -> str:
        server = make_server(exporter, "127.0.0.1", 0, socket.AF_INET)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return resp.read().decode(), resp.headers["Content-Type"]


def test_cached_within_min_interval_fresh_after(serve: Any) -> None:
    check = CountingCheck()
    exporter = Exporter(check, guests=False, timeout=5, min_interval=0.5)
    url = serve(exporter)
    first, ctype = scrape(url)
    assert ctype.startswith("text/plain")
    second, _ = scrape(url)
    assert check.calls == 1
    assert first == second
    time.sleep(0.6)
    scrape(url)
    assert check.calls == 2
    s = parse(first)
    assert value(s, "nestctl_run_success") == 1
    assert value(s, "nestctl_host_nested_enabled", id="node/pve1") == 1


def test_concurrent_scrapes_share_one_check(serve: Any) -> None:
    check = CountingCheck(delay=0.3)
    url = serve(Exporter(check, guests=False, timeout=5, min_interval=5))
    pages: list[str] = []
    threads = [threading.Thread(target=lambda: pages.append(scrape(url)[0])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert check.calls == 1
    assert len(set(pages)) == 1


def test_a_failed_check_serves_failure_not_the_last_success(serve: Any) -> None:
    check = CountingCheck()
    exporter = Exporter(check, guests=False, timeout=5, min_interval=0)
    url = serve(exporter)
    good = parse(scrape(url)[0])
    check.fail = True
    bad = parse(scrape(url)[0])
    assert value(bad, "nestctl_run_success") == 0
    assert value(bad, "nestctl_last_success_timestamp_seconds") == value(
        good, "nestctl_last_success_timestamp_seconds"
    )
    assert not [k for k in bad if k[0].startswith(("nestctl_vm_", "nestctl_host_", "nestctl_up"))]


def test_a_hanging_check_times_out_and_its_late_answer_is_used(serve: Any) -> None:
    check = CountingCheck(delay=0.8)
    url = serve(Exporter(check, guests=False, timeout=0.2, min_interval=0))
    start = time.monotonic()
    s = parse(scrape(url)[0])
    assert time.monotonic() - start < 0.7
    assert value(s, "nestctl_run_success") == 0
    time.sleep(0.8)
    s = parse(scrape(url)[0])  # the same check finished meanwhile: no second one was started
    assert value(s, "nestctl_run_success") == 1
    assert check.calls == 1


def test_other_paths(serve: Any) -> None:
    url = serve(Exporter(CountingCheck(), guests=False, timeout=5, min_interval=0))
    with urllib.request.urlopen(url + "/", timeout=5) as resp:
        assert b"/metrics" in resp.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "/nope", timeout=5)
    assert err.value.code == 404


def test_listen_parsing() -> None:
    assert parse_listen("127.0.0.1:10221")[:2] == ("127.0.0.1", 10221)
    assert parse_listen("[::1]:10221")[2] == socket.AF_INET6
    for bad in ("10221", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:٣٣"):
        with pytest.raises(NestctlError):
            parse_listen(bad)


def test_default_port_collides_with_neither_pve_exporter_nor_node_exporter() -> None:
    port = int(DEFAULT_LISTEN.rsplit(":", 1)[1])
    assert port not in (9221, 9100, 9090, 9093, 8006)


def test_missing_prometheus_client_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    result = CliRunner().invoke(cli, ["exporter", "--listen", "127.0.0.1:1"])
    assert isinstance(result.exception, NestctlError)
    assert result.exception.exit_code == 2
    assert "python3-prometheus-client" in str(result.exception)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["exporter", "--listen", f"127.0.0.1:{port}"])
    assert isinstance(result.exception, NestctlError)
    assert "cannot listen" in str(result.exception)
