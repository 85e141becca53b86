"""Whether a VM wants nesting: watch judges nesting only on those.

Stand-in until the project's one intent function (issue 18, branch i18) is merged; then this
module only calls it. What counts as asking: a `cpu` that passes the host's CPU through
(host, max) or names the nested-virt flag, `args` that add vmx/svm, or a `nested` tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ARGS = re.compile(r"[+]?(?:vmx|svm)(?:=on)?\b", re.ASCII)


def wants_nested(conf: Mapping[str, str]) -> bool:
    cpu = conf.get("cpu", "")
    model = cpu.split(",", 1)[0].removeprefix("cputype=")
    flags = re.search(r"flags=([^,]*)", cpu)
    if model in ("host", "max"):
        return True
    if flags and "+nested-virt" in flags.group(1).split(";"):
        return True
    if _ARGS.search(conf.get("args", "")):
        return True
    tags = re.split(r"[;, ]+", conf.get("tags", ""))
    return "nested" in tags
