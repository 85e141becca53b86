"""Judging a guest's backups: `backup_findings`, the one place that does it."""

from __future__ import annotations

from collections.abc import Iterable

from nestctl.api.backups.facts import (
    DEFAULT_MAX_AGE_DAYS,
    BackupFacts,
    BackupRun,
    BackupVolume,
    GuestBackup,
)
from nestctl.findings import Finding, error, unknown, warning

# -- judging --------------------------------------------------------------------------------------


def per_guest(facts: BackupFacts) -> list[GuestBackup]:
    newest: dict[int, BackupVolume] = {}
    for vol in facts.volumes:
        have = newest.get(vol.vmid)
        if have is None or (vol.ctime or 0) > (have.ctime or 0):
            newest[vol.vmid] = vol
    last_run: dict[int, BackupRun] = {}
    for run in facts.runs:
        have_run = last_run.get(run.vmid)
        if have_run is None or run.starttime > have_run.starttime:
            last_run[run.vmid] = run
    out = []
    for guest in facts.guests:
        jobs = facts.jobs or []
        covering = [j for j in jobs if j.covers(guest)]
        if facts.not_backed_up is not None:
            covered: bool | None = guest.vmid not in facts.not_backed_up
        elif facts.jobs is not None:
            answers = [j.covers(guest) for j in jobs]
            covered = True if any(answers) else (None if None in answers else False)
        else:
            covered = None
        disabled_only = bool(covering) and not any(j.enabled for j in covering)
        out.append(
            GuestBackup(
                guest,
                newest.get(guest.vmid),
                last_run.get(guest.vmid),
                [j.id for j in covering],
                disabled_only,
                covered,
                guest.node not in facts.unread_nodes,
            )
        )
    return out


def backup_findings(
    entries: Iterable[GuestBackup], now: float, *, max_age_days: float = DEFAULT_MAX_AGE_DAYS
) -> list[Finding]:
    """The verdict on each guest's backups; sets each entry's status. Templates are judged too
    (a template lost is a template to rebuild)."""
    out: list[Finding] = []
    limit = max_age_days * 86400
    for e in entries:
        g = e.guest
        who = f"{'CT' if g.kind == 'lxc' else 'VM'} {g.vmid}" + (f" ({g.name})" if g.name else "")
        last, run = e.last, e.last_run
        fix_now = f"nestctl backup now {g.vmid}"
        run_after_last = run is not None and (last is None or run.starttime >= (last.ctime or 0))
        if run is not None and run.ok is False and run_after_last:
            e._status = "failed"
            out.append(
                error(
                    "backup.failed",
                    f"{who}: its last backup failed: {run.error or 'no reason given'}.",
                    f"read the task log ({run.upid}), fix the cause, then {fix_now}",
                )
            )
        elif last is None and not e.node_read:
            e._status = "unknown"
            out.append(
                unknown(
                    "backup.unknown",
                    f"{who}: its node {g.node} could not be read, so its backups are unknown.",
                    "check again when the node is online",
                )
            )
        elif last is None:
            e._status = "running" if run is not None and run.ok is None else "none"
            out.append(warning("backup.none", f"{who}: no backup found on any storage.", fix_now))
        elif last.ctime is not None and now - last.ctime > limit:
            e._status = "stale"
            days = (now - last.ctime) / 86400
            out.append(
                warning(
                    "backup.stale",
                    f"{who}: its newest backup is {days:.0f} days old "
                    f"(the limit is {max_age_days:g} days).",
                    fix_now,
                )
            )
        else:
            e._status = "running" if run is not None and run.ok is None else "ok"
        if e.covered is False:
            out.append(
                warning(
                    "backup.no-job",
                    f"{who}: no backup job covers it.",
                    "add it to a backup job (Datacenter > Backup) or include all guests",
                )
            )
        elif e.disabled_only:
            out.append(
                warning(
                    "backup.job-disabled",
                    f"{who}: only disabled backup jobs cover it ({', '.join(e.jobs)}).",
                    "enable the job (Datacenter > Backup)",
                )
            )
    return out


def unknowns(facts: BackupFacts) -> list[Finding]:
    return [
        unknown(
            "backup.unreadable",
            p,
            "check that the node answers, and that you have Datastore.Audit on /storage and "
            "Sys.Audit on /",
        )
        for p in facts.problems
    ]
