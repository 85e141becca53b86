"""Backing up now: what each storage allows (mode, compression), and the vzdump call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from nestctl.api.actions import Api, Upid, _task
from nestctl.api.backups.facts import COMPRESSIONS, MODES

# -- choices and the action -----------------------------------------------------------------------


@dataclass(frozen=True)
class BackupChoices:
    storage: str
    modes: tuple[str, ...]
    compressions: tuple[str, ...]  # empty: the storage compresses itself (Proxmox Backup Server)

    def to_json(self) -> dict[str, Any]:
        return {
            "storage": self.storage,
            "modes": list(self.modes),
            "compress": list(self.compressions),
        }


def backup_choices(storages: Mapping[str, Mapping[str, Any]]) -> list[BackupChoices]:
    """What "Back up now" may offer per storage: only storages whose content allows backups;
    a Proxmox Backup Server compresses on its own, so no compression is chosen for it."""
    out = []
    for sid, s in sorted(storages.items()):
        content = str(s.get("content", "")).split(",")
        if "backup" not in content:
            continue
        pbs = s.get("type") == "pbs"
        out.append(BackupChoices(sid, MODES, () if pbs else COMPRESSIONS))
    return out


def backup_now(
    api: Api,
    node: str,
    vmid: int,
    *,
    storage: str,
    mode: str = "snapshot",
    compress: str | None = "zstd",
    notes: str | None = "{{guestname}}",
) -> Upid:
    if mode not in MODES:
        raise ValueError(f"unknown backup mode {mode!r}")
    if compress is not None and compress not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compress!r}")
    params: dict[str, Any] = {"vmid": str(int(vmid)), "storage": storage, "mode": mode}
    if compress is not None:
        params["compress"] = compress
    if notes:
        params["notes-template"] = notes
    return _task(api.request("POST", f"/nodes/{quote(node, safe='')}/vzdump", params))
