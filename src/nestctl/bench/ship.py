"""The runner as a zip for a guest: only the nestctl modules it imports, standard library only.

`python3 nestctl-bench.pyz --quick -o FILE` runs it; nothing else needs installing in the guest.
The module set is found by following `nestctl.*` imports from the runner, so it stays complete
when the runner grows.
"""

from __future__ import annotations

import ast
import io
import os
import zipfile

import nestctl

ENTRY = "nestctl.bench.runner"
MAIN = (
    "import sys\n"
    "if sys.version_info < (3, 11):\n"
    "    sys.exit('nestctl bench needs Python >= 3.11 in the guest (this is %d.%d)'"
    " % sys.version_info[:2])\n"
    "from nestctl.bench.runner import main\n"
    "sys.exit(main())\n"
)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(nestctl.__file__))


def _source(module: str) -> str | None:
    """The file of a nestctl module (a package's __init__.py), or None."""
    rel = module.split(".")[1:]
    base = os.path.join(_PACKAGE_DIR, *rel)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _imports(path: str) -> set[str]:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "nestctl" or m.startswith("nestctl.")}


def modules(entry: str = ENTRY) -> dict[str, str]:
    """module name -> source file, for `entry` and every nestctl module it imports (and parents)."""
    todo, seen = [entry], {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _source(name)
        if path is None:
            continue  # "from nestctl.x import function": the name is not a module
        seen[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        todo.extend(_imports(path))
    return seen


def runner_zip() -> bytes:
    """The zip (deterministic: fixed timestamps, sorted names)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = {"__main__.py": MAIN.encode()}
        for path in modules().values():
            arc = os.path.relpath(path, os.path.dirname(_PACKAGE_DIR)).replace(os.sep, "/")
            with open(path, "rb") as fh:
                entries[arc] = fh.read()
        for arc in sorted(entries):
            zf.writestr(zipfile.ZipInfo(arc, (2020, 1, 1, 0, 0, 0)), entries[arc])
    return buf.getvalue()
