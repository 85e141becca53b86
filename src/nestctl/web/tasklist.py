"""Recent tasks from `/cluster/tasks` (Proxmox lists only what the caller may see), parsed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nestctl.web.snapshot import _num

#: Task types in words (pve-manager's task descriptions, the common ones).
TYPES = {
    "qmstart": "Start VM",
    "qmstop": "Stop VM",
    "qmshutdown": "Shut down VM",
    "qmreboot": "Reboot VM",
    "qmreset": "Reset VM",
    "qmsuspend": "Suspend VM",
    "qmresume": "Resume VM",
    "qmigrate": "Migrate VM",
    "qmclone": "Clone VM",
    "qmcreate": "Create VM",
    "qmdestroy": "Destroy VM",
    "qmsnapshot": "Snapshot VM",
    "vzstart": "Start CT",
    "vzstop": "Stop CT",
    "vzshutdown": "Shut down CT",
    "vzreboot": "Reboot CT",
    "vzsuspend": "Suspend CT",
    "vzresume": "Resume CT",
    "vzdump": "Backup",
    "vzcreate": "Create CT",
    "vzdestroy": "Destroy CT",
    "srvreload": "Reload service",
    "aptupdate": "Update package lists",
}


@dataclass(frozen=True)
class TaskRow:
    upid: str
    node: str
    type: str
    id: str
    user: str
    start: float | None
    end: float | None
    status: str | None  # the exit text once ended ("OK", "WARNINGS: 2", an error); None: running

    @property
    def running(self) -> bool:
        return self.status is None

    @property
    def failed(self) -> bool:
        """Ended with neither OK nor only warnings (Proxmox's own reading of the exit text)."""
        return self.status is not None and not (
            self.status == "OK" or self.status.startswith("WARNINGS")
        )

    @property
    def title(self) -> str:
        what = TYPES.get(self.type, self.type)
        return f"{what} {self.id}".strip()


def parse_tasks(rows: Any, *, node: str | None = None, limit: int = 100) -> list[TaskRow]:
    out: list[TaskRow] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping) or not isinstance(row.get("upid"), str):
            continue
        if node is not None and row.get("node") != node:
            continue
        status = row.get("status")
        out.append(
            TaskRow(
                row["upid"],
                str(row.get("node", "")),
                str(row.get("type", "")),
                str(row.get("id", "") or ""),
                str(row.get("user", "")),
                _num(row.get("starttime")),
                _num(row.get("endtime")),
                str(status) if isinstance(status, str) and status else None,
            )
        )
    out.sort(key=lambda t: t.start or 0.0, reverse=True)
    return out[:limit]
