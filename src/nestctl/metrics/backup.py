"""Backup families from `nestctl backup status --json`'s `guests` (the same judgement).

ids are pve-exporter's (`qemu/<vmid>`, `lxc/<vmid>`), so `on(id)` joins its series. A guest
without any backup has no timestamp series (unknown is never a guessed 0); its status says none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nestctl.metrics.family import Families

STATUSES = ("ok", "failed", "stale", "none", "running", "unknown")


def backup_families(fam: Families, guests: Iterable[Mapping[str, Any]]) -> None:
    for g in guests:
        gid = g.get("id")
        if not isinstance(gid, str):
            continue
        last = g.get("last")
        ctime = last.get("ctime") if isinstance(last, Mapping) else None
        if isinstance(ctime, int) and not isinstance(ctime, bool):
            fam.add("nestctl_guest_last_backup_timestamp_seconds", float(ctime), id=gid)
            size = last.get("size") if isinstance(last, Mapping) else None
            if isinstance(size, int) and not isinstance(size, bool):
                fam.add("nestctl_guest_last_backup_size_bytes", float(size), id=gid)
        status = g.get("status")
        fam.enum(
            "nestctl_guest_backup_status",
            STATUSES,
            status if status in STATUSES else "unknown",
            id=gid,
        )


def backup_body(api: Any, *, max_age_days: float) -> list[dict[str, Any]]:
    """What `backup status --json` puts under `guests`, for the metrics' checks."""
    import time  # noqa: PLC0415

    from nestctl.api.backups import backup_findings, collect_backups, per_guest  # noqa: PLC0415

    now = time.time()
    entries = per_guest(collect_backups(api))
    backup_findings(entries, now, max_age_days=max_age_days)
    return [e.to_json(now) for e in entries]
