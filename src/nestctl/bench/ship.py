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


def _read(path: str) -> bytes | None:
    """A source file of the package through its own loader: a plain file, or a member of the
    single-file build (`nestctl.pyz`, a zip that open() cannot look into)."""
    loader = getattr(nestctl.__spec__, "loader", None)
    archive = getattr(loader, "archive", None)  # a zipimporter: members by their name inside
    try:
        if isinstance(archive, str):
            data: bytes = loader.get_data(os.path.relpath(path, os.path.abspath(archive)))  # type: ignore[union-attr]
            return data
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _source(module: str) -> str | None:
    """The file of a nestctl module (a package's __init__.py), or None."""
    rel = module.split(".")[1:]
    base = os.path.join(_PACKAGE_DIR, *rel)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if _read(candidate) is not None:
            return candidate
    return None


def _imports(path: str) -> set[str]:
    tree = ast.parse(_read(path) or b"", path)
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
            entries[arc] = _read(path) or b""
        for arc in sorted(entries):
            zf.writestr(zipfile.ZipInfo(arc, (2020, 1, 1, 0, 0, 0)), entries[arc])
    return buf.getvalue()
