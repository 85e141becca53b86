"""Helpers shared by the tests: fake host trees (cloud-init's populate_dir / dir2dict)."""

from __future__ import annotations

from pathlib import Path

#: shared/ beside the clone (conformance data, references); CI always has it.
SHARED = Path(__file__).resolve().parents[2] / "shared"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Populate a fake host tree: {"/proc/cpuinfo": "...", ...} (cloud-init's populate_dir)."""
    for hostpath, content in files.items():
        real = root / hostpath.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            real.write_bytes(content)
        else:
            real.write_text(content)
    return root


def read_tree(root: Path) -> dict[str, str]:
    """Read back every file under a tree as {"/etc/...": text} (cloud-init's dir2dict)."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out["/" + str(p.relative_to(root))] = p.read_text(errors="replace")
    return out
