"""The entry point's fast path for `host --json` says exactly what the click command says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nestctl import entry
from nestctl.cli import main as cli_main
from tests.host.scenarios import SCENARIOS, build


def run(main: object, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)  # type: ignore[operator]
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fast_path_equals_the_click_command(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(tmp_path, name)
    for args in (
        ["host", "--json", "--root", str(tmp_path)],
        ["host", f"--root={tmp_path}", "--json"],
    ):
        fast = run(entry.main, list(args), capsys)
        slow = run(cli_main, list(args), capsys)
        assert fast[0] == slow[0]
        assert fast[2] == slow[2]
        assert fast[1].splitlines() == slow[1].splitlines()


@pytest.mark.parametrize(
    "args",
    [
        ["host"],  # people: rich output through click
        ["host", "--json", "--help"],
        ["host", "enable", "--json"],
        ["host", "--json", "--root"],  # missing value: click's usage error
        ["host", "--json", "--bogus"],
        ["vm", "--json"],
        [],
    ],
)
def test_other_forms_go_through_click(args: list[str]) -> None:
    assert entry._fast_host_json(list(args)) is None


def test_a_missing_root_is_worded_by_click(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(entry.main, ["host", "--json", "--root", str(tmp_path / "no")], capsys)
    assert code == 2
    assert out == ""
    assert "does not exist" in err


def test_fast_path_does_not_import_click_or_rich(tmp_path: Path) -> None:
    build(tmp_path, "intel-nested-on")
    code = (
        "import sys\n"
        "from nestctl.entry import main\n"
        "try:\n"
        f"    main(['host', '--json', '--root', {str(tmp_path)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('click', 'rich', 'pathlib', 'dataclasses')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stderr.strip().splitlines()[-1] == "[]"
    assert '"verdict": "ready"' in proc.stdout
