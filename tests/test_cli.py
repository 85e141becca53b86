"""The command line as a user meets it: version, help on every command, completion, errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
from click import shell_completion
from click.testing import CliRunner

from nestctl import __version__, entry
from nestctl.cli import COMMANDS, cli, main
from nestctl.machine import Host
from tests.host.scenarios import build


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"nestctl {__version__}"


def test_help_lists_every_command_and_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    assert "0 ready, 1 problems found, 2 could not check" in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_on_every_command(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0
    assert "_NESTCTL_COMPLETE" in result.output


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "No such command" in capsys.readouterr().err


def _interrupt(*_args: object, **_kw: object) -> NoReturn:
    raise KeyboardInterrupt


def _exit_code(main_function: Callable[[list[str]], object], args: list[str]) -> object:
    try:
        main_function(args)
    except SystemExit as exc:
        return exc.code
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the error boundary")
    return 0


@pytest.mark.parametrize(
    "args",
    [
        ["host", "--json"],  # the entry point's fast path
        ["host"],
        ["host", "enable", "--dry-run"],
        ["host", "disable", "--json"],
        ["vm"],
        ["vm", "--json", "--all-nodes"],
        ["doctor"],
        ["guest", "--json"],
        ["metrics"],  # its check runs on a worker thread: a Ctrl-C raised there reaches main
    ],
)
def test_ctrl_c_is_exit_130_with_one_line_for_every_command(
    args: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    build(tmp_path, "intel-nested-on")
    monkeypatch.setattr(Host, "read", _interrupt)  # Ctrl-C while a file is read
    code = _exit_code(entry.main, [*args, "--root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 130  # not 1, "problems found"
    assert err == "nestctl: interrupted\n"
    assert out == ""


def test_ctrl_c_in_completion(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shell_completion, "get_completion_class", _interrupt)
    code = _exit_code(main, ["completion", "bash"])
    assert (code, capsys.readouterr().err) == (130, "nestctl: interrupted\n")


@pytest.mark.parametrize("args", [["host", "--json"], ["host"]])
def test_a_real_sigint_is_exit_130(args: list[str], tmp_path: Path) -> None:
    # A real signal at a real process, while it waits in a read (fast path and click path).
    build(tmp_path, "intel-nested-on")
    code = (
        "import sys, time\n"
        "from nestctl.machine import Host\n"
        "from nestctl.entry import main\n"
        "def slow_read(self, *a, **kw):\n"
        "    sys.stderr.write('reading\\n'); sys.stderr.flush(); time.sleep(60)\n"
        "Host.read = slow_read\n"
        f"main({[*args, '--root', str(tmp_path)]!r})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    assert proc.stderr.readline() == "reading\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "nestctl: interrupted\n"
    assert out == ""
