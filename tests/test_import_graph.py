"""No import circles in src/nestctl, counting every import: module level, lazy (inside a function)
and TYPE_CHECKING alike.

A lazy import hides a circle from Python, not from a reader: two modules that need each other are
one module in two files, and the next top-level import between them fails at start-up.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "nestctl"


def _module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a package's import also imports its parents)."""
    files = {_module_name(p, package_dir): p for p in package_dir.rglob("*.py")}
    top = package_dir.name
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in files else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        edges: set[str] = set()
        for target in targets:
            if target != top and not target.startswith(top + "."):
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                module = ".".join(parts[:i])
                # A module's own parent packages are already loading when it runs: not an edge.
                if module in files and module != name and not name.startswith(module + "."):
                    edges.add(module)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_src_has_no_import_circles() -> None:
    assert circles(import_graph(SRC)) == []


def test_the_scan_finds_a_circle_through_a_lazy_and_a_type_checking_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub.b import g\n    return g\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    (pkg / "c.py").write_text("from pkg.a import f\n")  # imports into the circle, not part of it
    assert circles(import_graph(pkg)) == [["pkg.a", "pkg.sub.b"]]


def test_a_module_importing_its_own_package_is_no_circle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import f\n")
    (pkg / "a.py").write_text("import pkg\ndef f():\n    return 1\n")
    assert circles(import_graph(pkg)) == []


def test_no_module_is_over_600_lines_unless_its_docstring_says_why() -> None:
    # A god file hides what it holds; a long module must say why it stays one.
    long = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 600 and "Long on purpose" not in (
            ast.get_docstring(ast.parse(text)) or ""
        ):
            long.append(path.relative_to(SRC).as_posix())
    assert long == []
