"""Backups through the Proxmox API, split by what each part holds: `facts` (each guest's last
backup, its task, the jobs that cover it, read from storage content, vzdump tasks and
/cluster/backup), `judge` (`backup_findings`, the one place that judges a guest's backups) and
`action` (what each storage allows, and "back up now"). Import from here.
"""

from __future__ import annotations

from nestctl.api.backups.action import BackupChoices, backup_choices, backup_now
from nestctl.api.backups.facts import (
    COMPRESSIONS,
    DEFAULT_MAX_AGE_DAYS,
    LOG_READS,
    MODES,
    BackupFacts,
    BackupJob,
    BackupRun,
    BackupVolume,
    Guest,
    GuestBackup,
    collect_backups,
    collect_guest_backup,
    guest_id,
    guests_from_resources,
    parse_jobs,
    parse_volumes,
    restore_command,
    runs_from_tasks,
)
from nestctl.api.backups.judge import backup_findings, per_guest, unknowns

__all__ = [
    "COMPRESSIONS",
    "DEFAULT_MAX_AGE_DAYS",
    "LOG_READS",
    "MODES",
    "BackupChoices",
    "BackupFacts",
    "BackupJob",
    "BackupRun",
    "BackupVolume",
    "Guest",
    "GuestBackup",
    "backup_choices",
    "backup_findings",
    "backup_now",
    "collect_backups",
    "collect_guest_backup",
    "guest_id",
    "guests_from_resources",
    "parse_jobs",
    "parse_volumes",
    "per_guest",
    "restore_command",
    "runs_from_tasks",
    "unknowns",
]
