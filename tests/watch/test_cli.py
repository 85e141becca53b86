"""`nestctl watch` as the admin runs it: --test to every route, --once against the simulator,
config problems and a missing Apprise as one message and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nestctl.cli import cli
from tests.watch.receivers import http_receiver

pytest.importorskip("apprise")


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_test_reports_each_delivery(tmp_path: Path) -> None:
    with http_receiver("json") as good:
        cfg = write_config(
            tmp_path,
            f"""
[targets.outer]
url = "https://127.0.0.1:8006"
[watch]
dashboard_url = "https://dash.example:8443"
[[watch.route]]
name = "phone"
urls = ["json://hook:secretpw42@127.0.0.1:{good.server_port}/"]
[[watch.route]]
name = "dead"
urls = ["json://127.0.0.1:1/"]
""",
        )
        result = CliRunner().invoke(cli, ["watch", "--config", str(cfg), "--test"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"ok   phone: json://hook:****@127.0.0.1:{good.server_port}/: delivered"
    assert lines[1].startswith("FAIL dead: json://127.0.0.1:1/: not delivered")
    assert "secretpw42" not in result.output
    [(title, body)] = good.got
    assert title == "nestctl: test message"
    assert body.endswith("https://dash.example:8443/events")


def test_once_against_the_simulator(pve_sim: object, tmp_path: Path) -> None:
    sim = pve_sim
    token = tmp_path / "token"
    token.write_text(sim.root_token)  # type: ignore[attr-defined]
    with http_receiver("json") as hook:
        cfg = write_config(
            tmp_path,
            f"""
[targets.lab]
url = "{sim.url}"
fingerprint = "{sim.fingerprint}"
token_file = "{token}"
[watch]
hold_down = 0
state_file = "{tmp_path / "state.json"}"
[[watch.route]]
urls = ["json://127.0.0.1:{hook.server_port}/"]
""",  # type: ignore[attr-defined]
        )
        result = CliRunner().invoke(cli, ["watch", "--config", str(cfg), "--once"])
        assert result.exit_code == 0, result.output
        assert "firing   error   lab/pve3: node pve3 is offline (the cluster lost it)" in (
            result.output
        )
        # pve3 offline and VM 201's nesting; pve2's nested is unknown without --ssh: no event.
        assert [t[:24] for t, _ in hook.got] == [
            "✖ node pve3 is offline (",
            "✖ VM 201 (epyc-nested) w",
        ]
        assert sim.root_token.split("=", 1)[1] not in str(hook.raw)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[targets.a]\nurl = 'https://h:8006'\n", "no [watch] table"),
        ("[watch]\nhold_down = -1\n", "'hold_down' must be a number >= 0"),
        ("[watch]\nquiet_hours = '22-7'\n", "quiet_hours must be HH:MM-HH:MM"),
        ("[watch]\nfrobnicate = 1\n", "unknown key 'frobnicate' in [watch]"),
        ("[[watch.route]]\nmin_severity = 'info'\nurls = ['json://x']\n", "min_severity must be"),
        ("[[watch.route]]\nurls = ['json://x']\ntargets = ['nope']\n", "no target 'nope'"),
        ("[[watch.route]]\nname = 'a'\n", "give urls or urls_file"),
        ("[watch]\ntimezone = 'Mars/Olympus'\n", "unknown time zone"),
    ],
)
def test_config_problems_are_one_error(tmp_path: Path, body: str, message: str) -> None:
    cfg = write_config(tmp_path, body)
    result = CliRunner().invoke(cli, ["watch", "--config", str(cfg), "--test"])
    assert result.exit_code != 0
    assert message in str(result.exception) + result.output
    assert "config.toml:" in str(result.exception) + result.output


def test_without_apprise_it_names_the_package(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "[[watch.route]]\nurls = ['json://127.0.0.1:9/']\n")
    code = (
        "import sys; sys.modules['apprise'] = None\n"
        "from nestctl.cli import main\n"
        f"main(['watch', '--config', {str(cfg)!r}, '--test'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "nestctl: error: apprise is not installed: apt install apprise "
        "(or: pip install 'nestctl[watch]')\n"
    )


def test_a_missing_token_file_stops_it_before_the_first_poll(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        f"""
[targets.lab]
url = "https://127.0.0.1:9"
token_file = "{tmp_path / "nope"}"
[watch]
state_file = "{tmp_path / "state.json"}"
[[watch.route]]
urls = ["json://127.0.0.1:9/"]
""",
    )
    result = CliRunner().invoke(cli, ["watch", "--config", str(cfg), "--once"])
    assert result.exit_code != 0
    assert "nope" in str(result.exception)
    assert not (tmp_path / "state.json").exists()
