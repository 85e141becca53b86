"""Storage endpoints: each node's storage "local" (dir; iso, vztmpl, backup) with its usage and
the backups on it (`Node.storage_usage`, `Node.backups`)."""

from __future__ import annotations

from typing import Any

from tests.pvesim.handlers import ApiError, Ctx, handles

_CONTENT = "iso,vztmpl,backup"


@handles("GET", "/nodes/{node}/storage")
def list_storage(ctx: Ctx) -> Any:
    node = ctx.node
    content = ctx.text("content")
    if content is not None and not set(content.split(",")) & set(_CONTENT.split(",")):
        return []
    used, total = node.storage_usage.get("local", (0, 0))
    return [
        {
            "storage": "local",
            "type": "dir",
            "content": _CONTENT,
            "shared": 0,
            "enabled": 1,
            "active": 1,
            "used": used,
            "total": total,
            "avail": max(0, total - used),
            "used_fraction": used / total if total else 0,
        }
    ]


@handles("GET", "/nodes/{node}/storage/{storage}/content")
def storage_content(ctx: Ctx) -> Any:
    node = ctx.node
    if ctx.route.uri_params["storage"] != "local":
        name = ctx.route.uri_params["storage"]
        raise ApiError(500, f"storage '{name}' does not exist")
    content = ctx.text("content")
    vmid = ctx.integer("vmid")
    if content not in (None, "backup"):
        return []
    out = []
    for item in node.backups:
        if vmid is not None and item["vmid"] != vmid:
            continue
        out.append(
            {
                "volid": item["volid"],
                "content": "backup",
                "format": "vma.zst",
                "size": int(item.get("size", 1_073_741_824)),
                "ctime": int(item["ctime"]),
                "vmid": int(item["vmid"]),
            }
        )
    return out
