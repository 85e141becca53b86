"""`nestctl backup status|now|jobs`: each guest's last backup, a backup now, the backup jobs.

status: 1 when a guest's last backup task failed (an error); a backup older than --max-age,
none at all, or a guest no job covers are warnings (exit 0, as every verb's warnings); 2 could
not check. Restore is never run from
here: the `qmrestore` / `pct restore` command is shown instead.
"""

from __future__ import annotations

import time
from typing import Any

import click

from nestctl.cli.common import emit
from nestctl.cli.guestapi import VMID, guest_options

EPILOG = (
    "Exit codes: 0 all backed up / done, 1 problems found or the task failed, 2 could not check."
)
TASK_TIMEOUT = 3600.0


@click.group(epilog=EPILOG)
def backup() -> None:
    """Backups of VMs and containers: the last one per guest, back up now, backup jobs."""


@backup.command(epilog=EPILOG)
@click.argument("vmids", nargs=-1, type=VMID, metavar="[VMID]...")
@click.option(
    "--max-age",
    "max_age",
    type=click.FloatRange(min=0.01),
    default=7.0,
    show_default=True,
    metavar="DAYS",
    help="Warn when a guest's newest backup is older than this.",
)
@guest_options
def status(vmids: tuple[int, ...], root: str, as_json: bool, **params: Any) -> None:
    """Each guest's last backup: age, size, storage, whether its task succeeded, its jobs."""
    from nestctl.api.backups import backup_findings, collect_backups, per_guest, unknowns  # noqa: PLC0415
    from nestctl.cli.guestapi import open_api  # noqa: PLC0415
    from nestctl.findings import Report, Section  # noqa: PLC0415

    now = time.time()
    with open_api(params, root) as (api, where):
        facts = collect_backups(api)
    entries = per_guest(facts)
    if vmids:
        entries = [e for e in entries if e.guest.vmid in vmids]
    findings = backup_findings(entries, now, max_age_days=params["max_age"]) + unknowns(facts)
    rows = []
    for e in entries:
        last = e.last
        what = "no backup"
        if last is not None:
            what = f"{_age(now, last.ctime)} ago, {_size(last.size)}, on {last.storage}"
        rows.append((f"{e.guest.id} {e.guest.name or ''}".strip(), f"{e.status}: {what}"))
    payload = {
        "max_age_days": params["max_age"],
        "guests": [e.to_json(now) for e in entries],
        "uncovered": [e.guest.id for e in entries if e.covered is False],
        "jobs": [j.to_json() for j in facts.jobs or []],
    }
    title = f"backups on {where}: {len(entries)} guest(s)"
    raise SystemExit(
        emit(Report(title, payload, findings, [Section("Guests", tuple(rows))]), as_json)
    )


@backup.command(epilog=EPILOG)
@click.argument("vmid", type=VMID)
@click.option("--storage", required=True, metavar="STORAGE", help="A storage that holds backups.")
@click.option(
    "--mode",
    type=click.Choice(("snapshot", "suspend", "stop")),
    default="snapshot",
    show_default=True,
    help="snapshot: no downtime; suspend; stop: most consistent.",
)
@click.option(
    "--compress",
    type=click.Choice(("zstd", "lzo", "gzip", "0")),
    default=None,
    help="Compression (default zstd; none on a Proxmox Backup Server).",
)
@guest_options
def now(vmid: int, root: str, as_json: bool, **params: Any) -> None:
    """Back VMID up now (vzdump) and follow the task to its end."""
    from nestctl.api.backups import backup_choices, backup_now, parse_volumes  # noqa: PLC0415
    from nestctl.api.errors import ApiError  # noqa: PLC0415
    from nestctl.cli.guestapi import find_guest, follow, guest_json, open_api, task_json  # noqa: PLC0415
    from nestctl.findings import Report, error  # noqa: PLC0415

    storage = params["storage"]
    with open_api(params, root) as (api, _where):
        guest = find_guest(api, vmid)
        listed = api.request("GET", f"/nodes/{guest.node}/storage", {"content": "backup"})
        storages = {
            str(s["storage"]): s
            for s in (listed if isinstance(listed, list) else [])
            if isinstance(s, dict) and isinstance(s.get("storage"), str)
        }
        choices = {c.storage: c for c in backup_choices(storages)}
        title = f"{guest.id}: back up to {storage}"
        payload: dict[str, Any] = {
            "guest": guest_json(guest),
            "storage": storage,
            "mode": params["mode"],
            "compress": None,
            "task": None,
            "backup": None,
        }
        choice = choices.get(storage)
        if choice is None:
            known = ", ".join(sorted(choices)) or "none"
            msg = f"{storage} is not a backup storage on node {guest.node} (these are: {known})."
            raise SystemExit(emit(Report(title, payload, [error("backup.storage", msg)]), as_json))
        compress = params["compress"]
        if compress is None:
            compress = "zstd" if choice.compressions else None
        elif not choice.compressions:
            msg = f"{storage} is a Proxmox Backup Server: it compresses on its own."
            raise SystemExit(emit(Report(title, payload, [error("backup.compress", msg)]), as_json))
        payload["compress"] = compress
        try:
            upid = backup_now(
                api, guest.node, vmid, storage=storage, mode=params["mode"], compress=compress
            )
        except ApiError as exc:
            report = Report(title, payload, [error("backup.now.refused", str(exc))])
            raise SystemExit(emit(report, as_json)) from None
        state = follow(api, upid, TASK_TIMEOUT)
        payload["task"] = task_json(state)
        findings = []
        if state.running:
            findings.append(error("backup.now.timeout", f"the task is still running ({upid.text})"))
        elif not state.ok:
            why = next((ln for ln in state.log_tail if ln.startswith("ERROR:")), state.exitstatus)
            findings.append(error("backup.now.failed", f"the backup failed: {why}"))
        else:
            path = f"/nodes/{guest.node}/storage/{storage}/content"
            vols = parse_volumes(
                api.request("GET", path, {"content": "backup", "vmid": vmid}), storage, guest.node
            )
            newest = max(vols, key=lambda v: v.ctime or 0, default=None)
            payload["backup"] = newest.to_json() if newest else None
    raise SystemExit(emit(Report(title, payload, findings), as_json))


@backup.command(epilog=EPILOG)
@guest_options
def jobs(root: str, as_json: bool, **params: Any) -> None:
    """The cluster's backup jobs: schedule, next run, the guests each covers; and the guests
    no job covers."""
    from nestctl.api.backups import backup_findings, collect_backups, per_guest, unknowns  # noqa: PLC0415
    from nestctl.cli.guestapi import open_api  # noqa: PLC0415
    from nestctl.findings import Report, Section  # noqa: PLC0415

    now_s = time.time()
    with open_api(params, root) as (api, where):
        facts = collect_backups(api)
    entries = per_guest(facts)
    wanted = ("backup.no-job", "backup.job-disabled")
    judged = backup_findings(entries, now_s)  # also sets each guest's status
    findings = [f for f in judged if f.code in wanted] + unknowns(facts)
    out = []
    rows = []
    for job in facts.jobs or []:
        covers = [e.guest.id for e in entries if job.covers(e.guest)]
        out.append({**job.to_json(), "covers": covers})
        nxt = (
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(job.next_run)) if job.next_run else "-"
        )
        state = "" if job.enabled else " (disabled)"
        rows.append((job.id + state, f"{job.schedule or '-'}, next {nxt}, to {job.storage}, "
                                     f"{len(covers)} guest(s)"))  # fmt: skip
    uncovered = [e.guest.id for e in entries if e.covered is False]
    payload = {"jobs": out, "uncovered": uncovered}
    sections = [Section("Backup jobs", tuple(rows))]
    if uncovered:
        sections.append(Section("No job covers", tuple((u, "") for u in uncovered)))
    title = f"backup jobs on {where}: {len(out)}"
    raise SystemExit(emit(Report(title, payload, findings, sections), as_json))


def _age(now: float, ctime: int | None) -> str:
    if ctime is None:
        return "?"
    s = max(0.0, now - ctime)
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} days"


def _size(size: int | None) -> str:
    if size is None:
        return "? bytes"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{size} B"
