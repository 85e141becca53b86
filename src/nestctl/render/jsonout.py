"""`--json` output: one object, keys as documented in the README (a public contract)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from nestctl.findings import Report


def render_json(report: Report, out: TextIO | None = None) -> None:
    stream = out if out is not None else sys.stdout
    json.dump(report.to_json(), stream, indent=2, sort_keys=False)
    stream.write("\n")
