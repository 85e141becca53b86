"""`nestctl host enable|disable` as a `Report`: plan, (apply), outcome, findings, exit code.

Exit codes: 0 done / nothing to do / a dry run that could be applied; 1 persisted but not live yet
(VMs to stop, a reboot) or the change did not take and was undone; 2 refused or failed (nothing
changed, or restored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nestctl.findings import Finding, Report, Section, Verdict, error, info, warning
from nestctl.host.apply import Outcome, apply_plan, apply_refusal
from nestctl.host.lock import LOCK_FILE, LockBusyError, change_lock
from nestctl.host.plan import Plan, plan_change
from nestctl.host.probe import probe_host

if TYPE_CHECKING:
    from nestctl.machine import Host

_VERDICTS = {
    "nothing-to-do": Verdict.READY,
    "planned": Verdict.READY,
    "done": Verdict.READY,
    "persisted": Verdict.NOT_READY,
    "restored": Verdict.NOT_READY,
    "refused": Verdict.UNKNOWN,
    "failed": Verdict.UNKNOWN,
}


def _findings(out: Outcome) -> list[Finding]:
    if out.state == "refused":
        return [error("host.change.refused", f"nothing changed: {out.message}")]
    if out.state == "failed":
        return [error("host.change.failed", out.message)]
    if out.state == "restored":
        return [error("host.change.did-not-take", out.message)]
    if out.state == "persisted":
        return [
            warning(
                "host.change.pending",
                f"{out.message}; still to do: {'; '.join(out.remaining)}",
                "; ".join(out.remaining),
            )
        ]
    if out.state == "planned" and out.remaining:
        return [info("host.change.apply-blocked", "applying would be refused: " + out.remaining[0])]
    return [info(f"host.change.{out.state}", out.message)]


def _sections(plan: Plan, out: Outcome) -> list[Section]:
    sections: list[Section] = []
    rows: list[tuple[str, str]] = []
    for n, fc in enumerate(plan.files, start=1):
        rows.append((f"{n}. {fc.kind}", f"{fc.path}  ({fc.reason})"))
    for m, argv in enumerate(plan.reload, start=len(plan.files) + 1):
        rows.append((f"{m}. run", " ".join(argv)))
    for blocker in plan.reload_blockers:
        rows.append(("no reload", blocker))
    for note in plan.notes:
        rows.append(("note", note))
    if rows:
        sections.append(Section("plan", tuple(rows)))
    for fc in plan.files:
        sections.append(Section(f"diff {fc.path}", (("", fc.diff().rstrip("\n")),)))
    done_rows = [("backup", b) for b in out.backups]
    done_rows += [("ran", c.describe()) for c in out.commands]
    done_rows += [("restored", r) for r in out.restored]
    if done_rows:
        sections.append(Section("done", tuple(done_rows)))
    return sections


def change_payload(plan: Plan, out: Outcome, *, dry_run: bool) -> dict[str, Any]:
    return {
        "action": plan.action,
        "dry_run": dry_run,
        "outcome": out.state,
        "message": out.message,
        "module": plan.module,
        "value": plan.value,
        "managed_file": plan.managed_file,
        "nothing_to_do": plan.nothing_to_do,
        "steps": plan.steps(),
        "reload_blockers": list(plan.reload_blockers),
        "backups": out.backups,
        "commands": out.commands_json(),
        "restored": out.restored,
        "remaining": out.remaining,
        "live_after": out.live_after,
    }


def change_report(
    host: Host,
    action: str,
    *,
    dry_run: bool = False,
    no_reload: bool = False,
    stamp: str | None = None,
) -> Report:
    if dry_run or not host.is_admin:
        plan, out = _plan_and_apply(host, action, dry_run=dry_run, no_reload=no_reload, stamp=stamp)
    else:
        # Serialized: a second run waits, then plans from what the first one left.
        try:
            with change_lock(host):
                plan, out = _plan_and_apply(
                    host, action, dry_run=dry_run, no_reload=no_reload, stamp=stamp
                )
        except (LockBusyError, OSError) as exc:
            plan = Plan(action, None, action == "enable", None, None, refusal=str(exc))
            out = Outcome("refused", f"cannot take the lock {LOCK_FILE}: {exc}")
    verdict = _VERDICTS[out.state]
    return Report(
        title=f"host {action}" + (" (dry run)" if dry_run else ""),
        payload={"change": change_payload(plan, out, dry_run=dry_run)},
        findings=_findings(out),
        sections=_sections(plan, out),
        verdict=verdict,
        summaries={verdict: out.message},
    )


def _plan_and_apply(
    host: Host, action: str, *, dry_run: bool, no_reload: bool, stamp: str | None
) -> tuple[Plan, Outcome]:
    facts = probe_host(host)
    plan = plan_change(host, facts, action, no_reload=no_reload)
    if dry_run:
        if plan.refusal is not None:
            out = Outcome("refused", plan.refusal)
        elif plan.nothing_to_do:
            out = Outcome("nothing-to-do", "nothing to do: nested is already as asked")
        else:
            blocked = apply_refusal(host, plan)
            out = Outcome("planned", "dry run: this plan would be applied; nothing changed")
            if blocked is not None:
                out.remaining = [blocked]
    else:
        out = apply_plan(host, plan, stamp=stamp)
    return plan, out
