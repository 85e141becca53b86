"""`nestctl serve` on the command line: where it may listen, what it needs, which targets."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from nestctl.cli import main
from nestctl.cli import serve as serve_cli

FP = ":".join(["AB"] * 32)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replaces the uvicorn loop: records what would have been served."""
    calls: list[Any] = []
    monkeypatch.setattr(serve_cli, "run", lambda settings, connector, tree: calls.append(settings))
    return calls


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0)


def test_other_addresses_need_tls_or_an_explicit_insecure_http(started, capsys, tmp_path):
    assert _exit(["serve", "--listen", "0.0.0.0:8765", "--api", "https://pve:8006"]) == 2
    assert "--tls-cert and --tls-key, or --insecure-http" in capsys.readouterr().err
    assert started == []
    assert (
        _exit(
            ["serve", "--listen", "192.0.2.7:8765", "--insecure-http", "--api", "https://pve:8006"]
        )
        == 0
    )
    assert "warning: serving plain HTTP on 192.0.2.7" in capsys.readouterr().err
    assert started[0].host == "192.0.2.7"
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    assert _exit(["serve", "--listen", "[::]:443", *tls, "--api", "https://pve:8006"]) == 0
    assert started[1].tls
    assert "warning" not in capsys.readouterr().err


def test_loopback_is_the_default(started):
    assert _exit(["serve", "--api", "https://pve:8006", "--fingerprint", FP]) == 0
    settings = started[0]
    assert (settings.host, settings.port) == ("127.0.0.1", 8765)
    assert settings.targets[0].fingerprint == FP


def test_half_a_tls_pair_and_plain_http_apis_are_refused(started, capsys, tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    assert _exit(["serve", "--tls-cert", str(cert), "--api", "https://pve:8006"]) == 2
    assert _exit(["serve", "--api", "http://pve:8006"]) == 2
    assert "only https://" in capsys.readouterr().err
    assert _exit(["serve", "--api", "https://pve:8006", "--fingerprint", "abc"]) == 2
    assert started == []


def test_missing_packages_name_the_debian_packages(started, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    assert _exit(["serve", "--api", "https://pve:8006"]) == 2
    err = capsys.readouterr().err
    assert "python3-uvicorn" in err
    assert "Traceback" not in err


def test_targets_from_the_config_file_with_their_parents(started, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[targets.outer]\nurl = "https://192.0.2.10:8006"\n'
        f'fingerprint = "{FP}"\n'
        '[targets.inner]\nurl = "https://192.0.2.50:8006"\nparent = "outer/101"\n'
    )
    assert _exit(["serve", "--config", str(config)]) == 0
    targets = {t.name: t for t in started[0].targets}
    assert targets["outer"].fingerprint == FP
    assert targets["inner"].parent == "outer/101"


def test_no_target_is_a_usage_error(started, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert _exit(["serve"]) == 2
    assert "needs a target" in capsys.readouterr().err


def test_local_mode_needs_a_proxmox_node(started, capsys, monkeypatch):
    monkeypatch.setattr("nestctl.machine.Host.find_program", lambda self, name: None)
    assert _exit(["serve", "--local"]) == 2
    assert "no pvesh here" in capsys.readouterr().err


def test_ssh_is_opt_in_and_not_with_local(started, capsys, monkeypatch):
    made = []
    monkeypatch.setattr(
        "nestctl.vm.collect.ssh.ssh_nested_reader", lambda: made.append(1) or (lambda n, a: None)
    )
    assert _exit(["serve", "--api", "https://pve:8006"]) == 0
    assert made == []
    assert _exit(["serve", "--api", "https://pve:8006", "--ssh"]) == 0
    assert made == [1]
    assert _exit(["serve", "--local", "--ssh"]) == 2
    assert "--local serves this node" in capsys.readouterr().err


def test_resource_bounds_and_allowed_hosts_have_defaults_and_options(started, capsys):
    assert _exit(["serve", "--api", "https://pve:8006", "--fingerprint", FP]) == 0
    s = started[0]
    assert (s.max_connections, s.header_timeout, s.max_sessions) == (200, 10.0, 1000)
    assert s.allowed_hosts == []
    argv = ["serve", "--api", "https://pve:8006", "--fingerprint", FP, "--max-connections", "50"]
    argv += ["--header-timeout", "3", "--max-sessions", "20", "--allowed-host", "dash.example"]
    argv += ["--allowed-host", "pve.lan"]
    assert _exit(argv) == 0
    s = started[1]
    assert (s.max_connections, s.header_timeout, s.max_sessions) == (50, 3.0, 20)
    assert s.allowed_hosts == ["dash.example", "pve.lan"]
    assert _exit([*argv[:5], "--max-connections", "0"]) == 2
    assert "--max-connections" in capsys.readouterr().err
