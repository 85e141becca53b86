"""Build dist/nestctl.pyz: one file that runs with a bare python3 >= 3.11 (`python3 nestctl.pyz`).

click, rich and their pure-Python dependencies are vendored from PyPI (wheels only; a compiled
file is refused). Byte-code for the target interpreter (Debian 12's python3 by default) sits
beside the modules a run imports, where zipimport looks for it; another Python version ignores it
and compiles the sources. Reproducible for the same vendored versions: sorted entries, one time
stamp, fixed modes, hash-based byte-code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

from common import PACKAGE, REPO, package_files, source_date_epoch, version

MAIN = """# nestctl as one file: python3 nestctl.pyz COMMAND ...
import sys

from nestctl.entry import main

sys.exit(main())
"""
#: pip's bookkeeping: not reproducible, and nothing reads it from the archive.
PIP_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
#: byte-code only for what a run imports (pygments' lexers alone would add 1.5 MB unused).
COMPILED = ("__main__.py", "nestctl", "click", "rich")
COMPILE = """
import pathlib, py_compile, sys
root = pathlib.Path(sys.argv[1])
for path in sorted(p for p in root.rglob("*.py") if p.relative_to(root).parts[0] in sys.argv[2:]):
    py_compile.compile(str(path), cfile=str(path) + "c", dfile=str(path.relative_to(root)),
        doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def requirements() -> list[str]:
    return list(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


def vendor(stage: Path) -> None:
    """pip-install the runtime dependencies (wheels, pure Python) into STAGE."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--target",
            str(stage),
            *requirements(),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"pip could not fetch the dependencies: {proc.stderr.strip()}")
    shutil.rmtree(stage / "bin", ignore_errors=True)
    for path in sorted(stage.rglob("*")):
        if path.suffix in (".so", ".pyd", ".dylib"):
            sys.exit(f"{path.relative_to(stage)} is compiled: the .pyz vendors pure Python only")
        if path.is_file() and path.parent.name.endswith(".dist-info") and path.name in PIP_FILES:
            path.unlink()


def compile_for(target: str, stage: Path) -> None:
    proc = subprocess.run(
        [target, "-c", COMPILE, str(stage), *COMPILED], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"byte-compiling with {target} failed: {proc.stderr.strip()}")


def write_zip(stage: Path, out: Path, epoch: int) -> None:
    stamp = time.gmtime(max(epoch, 315532800))[:6]  # zip dates start in 1980
    files = sorted(
        (p for p in stage.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
        key=lambda p: p.relative_to(stage).as_posix(),
    )
    tmp = out.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        fh.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for path in files:
                info = zipfile.ZipInfo(path.relative_to(stage).as_posix(), date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())
    tmp.chmod(0o755)
    tmp.replace(out)


def build(out_dir: Path, target: str) -> Path:
    epoch = source_date_epoch()
    stage = REPO / "build" / "pyz"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    vendor(stage)
    for rel in package_files():
        dest = stage / "nestctl" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE / rel, dest)
    (stage / "__main__.py").write_text(MAIN)
    compile_for(target, stage)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "nestctl.pyz"
    write_zip(stage, out, epoch)
    shutil.rmtree(stage, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output directory")
    parser.add_argument(
        "--target-python",
        default="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable,
        help="interpreter whose byte-code is included (default: Debian's /usr/bin/python3)",
    )
    args = parser.parse_args()
    out = build(args.out.resolve(), args.target_python)
    print(f"{out} (nestctl {version()}, {out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
