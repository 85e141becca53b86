"""The console clients the browser runs, served from the packages that ship them (never copied
into this repository).

* noVNC: Proxmox's `/usr/share/novnc-pve` on a PVE node, else Debian's `novnc` package
  (`/usr/share/novnc`). Both hold noVNC's ES modules under `core/` (`core/rfb.js`), which the
  page imports as they are.
* xterm.js: Proxmox's `/usr/share/pve-xtermjs` (a browser bundle, `xterm.js` + `xterm.css`), else
  Debian's `node-xterm` (`/usr/share/nodejs/xterm`, xterm.js 3.8 as CommonJS modules), which is
  wrapped here into one script with a small `require` (no eval: the page's CSP forbids it).

Why this order: on a Proxmox node the copies Proxmox maintains for its own console are there
and current; elsewhere Debian's packages are one `apt-get install` away.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

NOVNC_DIRS = (Path("/usr/share/novnc-pve"), Path("/usr/share/novnc"))
PVE_XTERM = Path("/usr/share/pve-xtermjs")
DEBIAN_XTERM = Path("/usr/share/nodejs/xterm")
NOVNC_HINT = "apt-get install novnc (Debian), or run the dashboard on a Proxmox node (novnc-pve)"
XTERM_HINT = "apt-get install node-xterm (Debian), or run the dashboard on a Proxmox node"


@dataclass(frozen=True)
class Vendor:
    novnc: Path | None
    xterm_kind: str | None  # "pve" | "debian" | None
    xterm: Path | None


def find(root: Path = Path("/")) -> Vendor:
    def under(p: Path) -> Path:
        return root / p.relative_to("/")

    novnc = next((under(d) for d in NOVNC_DIRS if (under(d) / "core" / "rfb.js").is_file()), None)
    if (under(PVE_XTERM) / "xterm.js").is_file():
        return Vendor(novnc, "pve", under(PVE_XTERM))
    if (under(DEBIAN_XTERM) / "lib" / "xterm.js").is_file():
        return Vendor(novnc, "debian", under(DEBIAN_XTERM))
    return Vendor(novnc, None, None)


def safe_file(base: Path, rel: str) -> Path | None:
    """`base/rel` when it is a file inside `base` (no `..`, no absolute path, no symlink out)."""
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or any(p in ("..", "") or p.startswith(".") for p in parts):
        return None
    path = (base / rel).resolve()
    try:
        path.relative_to(base.resolve())
    except ValueError:
        return None
    return path if path.is_file() else None


@functools.lru_cache(maxsize=4)
def commonjs_bundle(lib: Path) -> str:
    """Every module under `lib` (tests and maps left out) as one browser script that defines
    `window.Terminal` (with the fit addon applied): a minimal CommonJS `require`."""
    modules: dict[str, str] = {}
    # Debian ships lib/addons as a symlink to another directory: follow it (rglob would not).
    for folder, _dirs, names in sorted(os.walk(lib, followlinks=True)):
        for name in sorted(names):
            if name.endswith(".js") and not name.endswith(".test.js"):
                path = Path(folder) / name
                modules[path.relative_to(lib).as_posix()] = path.read_text(encoding="utf-8")
    out = ["(function(){", "var defs = {}, cache = {};"]
    for name, source in modules.items():
        key = json.dumps(name, allow_nan=False)
        out.append(f"defs[{key}] = function(require, module, exports) {{\n{source}\n}};")
    out.append(
        """
function resolve(from, spec) {
  var parts = from.split('/'); parts.pop();
  spec.split('/').forEach(function (p) {
    if (p === '..') { parts.pop(); } else if (p !== '.') { parts.push(p); }
  });
  var name = parts.join('/');
  return defs[name + '.js'] ? name + '.js' : name + '/index.js';
}
function load(name) {
  if (cache[name]) { return cache[name].exports; }
  var module = {exports: {}};
  cache[name] = module;
  defs[name].call(module.exports, function (spec) { return load(resolve(name, spec)); },
                  module, module.exports);
  return module.exports;
}
var Terminal = load('xterm.js');
Terminal.applyAddon(load('addons/fit/fit.js'));
window.Terminal = Terminal;
})();
"""
    )
    return "\n".join(out)
