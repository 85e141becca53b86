"""What docs/host.md promises holds: every finding code the code can emit is documented, and the
`--json` path stays light (no rich, no difflib, no subprocess on a non-live root)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from nestctl.host.kvm import PERFORMANCE_PARAMS
from tests.host.scenarios import build

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "host.md"
SRC = REPO / "src" / "nestctl" / "host"


def emitted_codes() -> set[str]:
    text = "\n".join(p.read_text() for p in SRC.glob("*.py"))
    codes = set(re.findall(r'"(host\.[a-z0-9_.-]+[a-z0-9_])"', text))
    codes |= {f"host.modprobe.{k}" for k in ("install", "remove")}
    codes |= {f"host.perf.{p}-off" for params in PERFORMANCE_PARAMS.values() for p in params}
    codes |= {f"host.change.{s}" for s in ("done", "nothing-to-do", "planned")}
    return codes


def test_every_finding_code_is_documented() -> None:
    doc = DOC.read_text()
    codes = emitted_codes()
    assert len(codes) > 30
    missing = sorted(c for c in codes if f"`{c}`" not in doc)
    assert not missing, f"undocumented finding codes: {missing}"


def test_json_path_imports_no_rich(tmp_path: Path) -> None:
    build(tmp_path, "running-vms")
    probe = (
        "import sys\n"
        "from nestctl.cli import main\n"
        "try:\n"
        f"    main(['host', '--root', {str(tmp_path)!r}, '--json'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'rich', 'difflib', 'subprocess'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert '"host"' in proc.stdout
