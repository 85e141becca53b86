"""What only the node itself can tell, read over SSH as root with the cluster's own SSH trust.

The kvm module's `nested` parameter is not in the API. With `--ssh` each node is asked once:
`nestctl host --json` when nestctl is installed there (it also knows the value after a reboot
and which modprobe file decides it), else the live value from sysfs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from nestctl.machine import CommandStatus, Runner
from nestctl.machine.ssh import SshMachine
from nestctl.vm.collect.api import NestedReader, NestedReading

#: One round trip: the node's DMI product_uuid (ties it to the VM it runs in, for `tree`), then
#: nestctl's own answer if it is installed, else the raw sysfs values.
REMOTE_COMMAND = (
    'echo "product_uuid $(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"; '
    "if command -v nestctl >/dev/null 2>&1; then nestctl host --json; else "
    "for m in kvm_intel kvm_amd; do f=/sys/module/$m/parameters/nested; "
    '[ -r "$f" ] && echo "$m $(cat "$f")"; done; fi'
)


def parse_remote(output: str) -> NestedReading:
    """The reading from REMOTE_COMMAND's output (JSON from nestctl, or `module value` lines)."""
    first, _, rest = output.strip().partition("\n")
    uuid = None
    if first.startswith("product_uuid"):
        uuid = first.removeprefix("product_uuid").strip().lower() or None
    else:
        rest = output
    reading = _nested(rest.strip())
    return replace(reading, product_uuid=uuid)


def _nested(text: str) -> NestedReading:
    if text.startswith("{"):
        return _from_host_json(text)
    for line in text.splitlines():
        module, _, value = line.strip().partition(" ")
        if module in ("kvm_intel", "kvm_amd"):
            live = {"y": True, "1": True, "n": False, "0": False}.get(value.strip().lower())
            if live is not None:
                return NestedReading(live, None, None)
    return NestedReading(None, problem="no kvm_intel/kvm_amd module loaded on the node")


def _from_host_json(text: str) -> NestedReading:
    try:
        body: Any = json.loads(text)
        nested = body["host"]["nested"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return NestedReading(None, problem="`nestctl host --json` on the node gave no nested")
    live, after = nested.get("live"), nested.get("after_reboot")
    decided = nested.get("decided_by")
    return NestedReading(
        live if isinstance(live, bool) else None,
        after if isinstance(after, bool) else None,
        decided if isinstance(decided, str) else None,
        None if isinstance(live, bool) else "the node's nestctl could not read it",
    )


def ssh_nested_reader(
    user: str = "root", timeout: float = 20.0, runner: Runner | None = None
) -> NestedReader:
    def read(node: str, address: str | None) -> NestedReading:
        where = f"{user}@{address or node}"
        done = SshMachine(where, runner=runner, timeout=timeout).run(
            ["sh", "-c", REMOTE_COMMAND], ok_codes=(0, 1)
        )
        if done.status is CommandStatus.TIMEOUT:
            return NestedReading(None, problem=f"--ssh: {where} did not answer in {timeout:g} s")
        if done.status is CommandStatus.NOT_FOUND and done.rc is None:
            return NestedReading(None, problem="--ssh: no ssh client on this machine")
        if not done.ok or not done.stdout.strip():
            err = " ".join(done.stderr.split())[:200] or f"exit {done.rc}"
            return NestedReading(None, problem=f"--ssh {where}: {err}")
        return parse_remote(done.stdout)

    return read
