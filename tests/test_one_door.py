"""The one door: no module of src/ spawns a process or touches a file except through `Host`.

`Host` (nestctl.machine) is what makes `--root`, fake-root tests and the safety guarantees (no
write through a symlink, fixed modes, FIFOs refused, bounded reads) hold everywhere. This scan
fails on any process spawn or file access outside it, unless the file is listed below with why.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "nestctl"

#: Modules that may not be imported outside the door: they spawn processes or make files.
MODULES = frozenset({"subprocess", "tempfile", "shutil"})
#: os/io functions that open, make, move or remove files.
OS_CALLS = frozenset(
    {"open", "fdopen", "replace", "rename", "unlink", "remove", "makedirs", "mkdir", "rmdir"}
    | {"scandir", "listdir", "fsync", "chmod", "chown", "symlink", "truncate", "system", "popen"}
    | {"spawnv", "spawnvp", "execv", "execvp", "fork", "posix_spawn"}
)

#: The door itself, and files that are not the inspected machine's, each with why.
ALLOWED: dict[str, str] = {
    "machine/": "the door itself",
    "userfile.py": "files the user names (secrets, configs, reports) are on the machine nestctl "
    "runs on, not under --root; read with the door's guards (no FIFO, bounded)",
    "web/pages/assets.py": "the dashboard's own static files, shipped in the package",
    "web/consoles/vendor.py": "the browser's console clients (noVNC, xterm.js) from the packages "
    "installed where the dashboard runs, not files of the inspected machine",
    "bench/ship.py": "reads nestctl's own source files to build the runner zip",
    "bench/runner.py": "the guest-side runner (standalone, stdlib only, run from a zip): writes "
    "the result file its caller named",
    "cli/bench.py": "writes the result file the user named with --save/--output",
    "bench/workloads.py": "the fork_exec workload measures process creation itself: "
    "posix_spawn + wait inside the timed loop, where no runner may stand between",
    "qemu/jsonline.py": "opens a directory to name a long socket path relative to it",
}


def violations(path: Path) -> list[str]:
    """`line: what` for each process spawn or file access in one source file."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        what = None
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] in MODULES]
            what = f"import {names[0]}" if names else None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            what = f"from {node.module} import" if node.module.split(".")[0] in MODULES else None
        elif isinstance(node, ast.Call):
            what = _call(node)
        if what:
            found.append(f"{node.lineno}: {what}")
    return found


def _call(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id == "open":
        return "open()"
    if not isinstance(func, ast.Attribute):
        return None
    owner = func.value.id if isinstance(func.value, ast.Name) else None
    if owner in ("os", "io") and func.attr in OS_CALLS:
        return f"{owner}.{func.attr}()"
    if func.attr in ("write_text", "write_bytes", "touch"):
        return f".{func.attr}()"
    # Path.read_text() takes no path; Host.read_text(hostpath) is the door's own method.
    if func.attr in ("read_text", "read_bytes", "mkdir", "unlink") and not node.args:
        return f".{func.attr}()"
    return None


def _listed(rel: str, table: dict[str, str]) -> str | None:
    return next((key for key in table if rel == key or rel.startswith(key.rstrip("/") + "/")), None)


def test_nothing_goes_around_the_door() -> None:
    bad = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if _listed(rel, ALLOWED):
            continue
        found = violations(path)
        if found:
            bad[rel] = found
    assert not bad, f"process spawns or file access outside Host (use the door): {bad}"


def test_every_listed_exception_is_still_needed() -> None:
    # A stale entry would let the next violation in that file pass unseen.
    for key in ALLOWED:
        paths = [SRC / key] if not key.endswith("/") else sorted((SRC / key).rglob("*.py"))
        assert any(p.is_file() and violations(p) for p in paths), f"{key} needs no exception"


def test_the_scan_sees_each_way_around_the_door(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text(
        "import subprocess\n"
        "from tempfile import mkstemp\n"
        "import os\n"
        "from pathlib import Path\n"
        "def f(host):\n"
        "    open('/etc/x')\n"
        "    os.open('/etc/x', 0)\n"
        "    Path('/etc/x').write_text('y')\n"
        "    Path('/etc/x').read_text()\n"
        "    host.read_text('/etc/x')\n"  # the door's own method: fine
        "    'a'.replace('a', 'b')\n"  # not a file operation
    )
    assert [v.split(": ", 1)[1] for v in violations(source)] == [
        "import subprocess",
        "from tempfile import",
        "open()",
        "os.open()",
        ".write_text()",
        ".read_text()",
    ]
