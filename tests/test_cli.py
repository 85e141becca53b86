"""The command line as a user meets it: version, help on every command, completion, errors."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from nestctl import __version__
from nestctl.cli import COMMANDS, cli, main


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
