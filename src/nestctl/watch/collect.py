"""Snapshots of one target through the API engine `doctor --api` and the dashboard use.

The cheap check (every `cheap_every` s): /cluster/resources (nodes, VMs, storages),
/cluster/tasks (with the last log lines of a task that failed, fetched once per task) and each
online node's status (reachable or not). The full check (every `full_every` s): the whole scan
and analysis of `doctor --api` (`collect_api` + `analyse_remote`), giving each VM's nesting
chain, the nodes' nested parameter (over SSH), the uuids that tie inner targets to their VM,
and the newest backup of each VM (from the backup storages' content). Its facts are kept and
laid over every cheap snapshot until the next full check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nestctl.watch.snapshot import NodeSnap, StorageSnap, TargetSnap, TaskSnap, VmSnap

if TYPE_CHECKING:
    from nestctl.api.client import ApiClient
    from nestctl.api.targets import Target
    from nestctl.vm.collect.api import NestedReader

#: Opens a client for a target (the CLI's `open_client`, or a test's).
ClientFactory = Callable[["Target"], "ApiClient"]
LOG_LINES = 3
TASK_WINDOW = 24 * 3600


@dataclass
class FullFacts:
    nodes: dict[str, tuple[bool | None, bool | None, str | None]] = field(default_factory=dict)
    vms: dict[int, tuple[bool | None, str | None, str | None, str | None]] = field(
        default_factory=dict
    )
    node_uuids: dict[str, str] = field(default_factory=dict)
    vm_uuids: dict[int, str] = field(default_factory=dict)
    newest_backup: dict[int, float] | None = None


class Collector:
    """Snapshots of one target; keeps the last full check's facts and failed tasks' logs."""

    def __init__(
        self,
        target: Target,
        open_client: ClientFactory,
        *,
        nested_reader: NestedReader | None = None,
        concurrency: int = 8,
    ) -> None:
        self.target = target
        self.open_client = open_client
        self.nested_reader = nested_reader
        self.concurrency = concurrency
        self.full_facts: FullFacts | None = None
        self.logs: dict[str, tuple[str, ...]] = {}
        self.secrets: set[str] = set()

    def snapshot(self, now: float, *, full: bool) -> TargetSnap:
        from nestctl.api.errors import ApiError, ApiTlsError  # noqa: PLC0415

        snap = TargetSnap(self.target.name, now, parent=self.target.parent)
        try:
            client = self.open_client(self.target)
        except Exception as exc:  # noqa: BLE001 - any failure to open is "could not check"
            snap.problem = _one_line(exc)
            return snap
        self._remember_secrets(client)
        try:
            self._cheap(client, snap, now)
            if full:
                self._try_full(client, snap)
        except ApiTlsError as exc:
            snap.tls_problem = _one_line(exc)
            return snap
        except ApiError as exc:
            snap.problem = _one_line(exc)
            return snap
        finally:
            client.close()
        self._lay_over(snap)
        return snap

    def _try_full(self, client: ApiClient, snap: TargetSnap) -> None:
        """The full check; when it fails (the cheap one answered), the last one's facts stay
        and the failure is said (its events are then unseen, not resolved)."""
        from nestctl.api.errors import ApiError, ApiTlsError  # noqa: PLC0415

        try:
            self.full_facts = self._full(client)
        except ApiTlsError:
            raise
        except ApiError as exc:
            snap.full_problem = _one_line(exc)

    def _remember_secrets(self, client: ApiClient) -> None:
        creds = client.credentials
        for name in ("secret", "password"):
            value = getattr(creds, name, None)
            if isinstance(value, str):
                self.secrets.add(value)

    # -- the cheap check --------------------------------------------------------------------

    def _cheap(self, client: ApiClient, snap: TargetSnap, now: float) -> None:
        from nestctl.api.errors import ApiError, ApiTlsError  # noqa: PLC0415

        resources = client.get("/cluster/resources")
        if not isinstance(resources, list):
            raise _bad("/cluster/resources is not a list")
        _inventory(resources, snap)
        for node in snap.nodes.values():
            if not node.online:
                continue
            try:
                client.get(f"/nodes/{node.name}/status")
                node.reachable = True
            except ApiTlsError:
                raise
            except ApiError as exc:
                # 595 (pveproxy cannot reach it) or no answer: down; anything else answered.
                node.reachable = exc.status not in (595, None)
                node.problem = _one_line(exc)
        try:
            tasks = client.get("/cluster/tasks")
        except ApiTlsError:
            raise
        except ApiError as exc:  # the rest of the poll still stands; tasks stay as they were
            snap.tasks_problem = _one_line(exc)
            tasks = []
        if not isinstance(tasks, list):
            snap.tasks_problem = "/cluster/tasks is not a list"
        for item in tasks if isinstance(tasks, list) else []:
            task = _task(item)
            if task is None or now - task.starttime > TASK_WINDOW:
                continue
            if task.status is not None and task.status != "OK" and task.endtime is not None:
                task.log_tail = self._log_tail(client, task)
            snap.tasks.append(task)

    def _log_tail(self, client: ApiClient, task: TaskSnap) -> tuple[str, ...]:
        from nestctl.api.errors import ApiError  # noqa: PLC0415

        if task.upid not in self.logs:
            try:
                lines = client.get(f"/nodes/{task.node}/tasks/{task.upid}/log", start=0, limit=5000)
            except ApiError:
                return ()
            text = (
                [str(line.get("t", "")) for line in lines if isinstance(line, dict)]
                if isinstance(lines, list)
                else []
            )
            tail = [t for t in text if t.strip() and not t.startswith("TASK ")][-LOG_LINES:]
            self.logs[task.upid] = tuple(tail)
            if len(self.logs) > 500:
                self.logs.pop(next(iter(self.logs)))
        return self.logs[task.upid]

    # -- the full check ---------------------------------------------------------------------

    def _full(self, client: ApiClient) -> FullFacts:
        from nestctl.tree.views import smbios_uuid  # noqa: PLC0415
        from nestctl.vm.collect.api import collect_api  # noqa: PLC0415
        from nestctl.vm.facts import VmOptions  # noqa: PLC0415
        from nestctl.vm.remote import analyse_remote  # noqa: PLC0415

        tag = (self.target.intent_tag or "nested").lower()  # the config file may rename it
        opts = VmOptions(all_nodes=True, use_qemu=False, sections=False, intent_tag=tag)
        scan = collect_api(
            client, opts, concurrency=self.concurrency, nested_reader=self.nested_reader
        )
        results, _ = analyse_remote(scan, opts)
        confs = {v.config.vmid: v.config for v in scan.vms}
        facts = FullFacts()
        for report in scan.node_reports:
            reading = report.nested
            facts.nodes[report.node] = (reading.live, reading.after_reboot, reading.decided_by)
            if reading.product_uuid:
                facts.node_uuids[report.node] = reading.product_uuid
        for result in results:
            conf = confs.get(result.vmid)
            if conf is None:
                continue
            # The one intent and the one verdict (nestctl.vm.intent / nestctl.vm.verdict).
            verdict = result.verdict
            broken = verdict.broken_link if verdict and verdict.verdict == "not-ready" else None
            fix = verdict.fix if verdict is not None else None
            wants = result.intent.wants_nested
            chain = next((k for k, v in result.chain.items() if v == "broken"), None)
            facts.vms[result.vmid] = (wants, broken, fix, chain)
            uuid = smbios_uuid(conf.current().get("smbios1"))
            if uuid:
                facts.vm_uuids[result.vmid] = uuid
        facts.newest_backup = _newest_backups(client)
        return facts

    def _lay_over(self, snap: TargetSnap) -> None:
        facts = self.full_facts
        if facts is None or snap.full_problem is not None:
            return  # no full facts this time: what they judge is unseen
        snap.full = True
        for name, node in snap.nodes.items():
            live, after, by = facts.nodes.get(name, (None, None, None))
            node.nested_live, node.nested_after_reboot, node.nested_decided_by = live, after, by
        for vmid, vm in snap.vms.items():
            if vmid in facts.vms:
                vm.wants_nested, vm.broken_link, vm.nested_fix, vm.chain_broken = facts.vms[vmid]
        snap.node_uuids = dict(facts.node_uuids)
        snap.vm_uuids = dict(facts.vm_uuids)
        snap.newest_backup = facts.newest_backup


def _inventory(resources: list[Any], snap: TargetSnap) -> None:
    from nestctl.vm.collect.api import int_of  # noqa: PLC0415

    for res in resources:
        if not isinstance(res, dict) or not isinstance(res.get("node"), str):
            continue
        node = res["node"]
        kind = res.get("type")
        if kind == "node":
            snap.nodes[node] = NodeSnap(node, online=res.get("status") == "online")
        elif kind == "qemu":
            vmid = int_of(res.get("vmid"))
            if vmid is None:
                continue
            name = res.get("name")
            snap.vms[vmid] = VmSnap(
                vmid,
                name if isinstance(name, str) else None,
                node,
                str(res.get("status") or "unknown"),
                template=bool(int_of(res.get("template")) or 0),
                lock=res.get("lock") if isinstance(res.get("lock"), str) else None,
            )
        elif kind == "storage" and isinstance(res.get("storage"), str):
            snap.storages.append(
                StorageSnap(
                    node,
                    res["storage"],
                    int_of(res.get("disk")),
                    int_of(res.get("maxdisk")),
                    shared=bool(int_of(res.get("shared")) or 0),
                    content=str(res.get("content") or ""),
                )
            )
    for vm in snap.vms.values():
        snap.nodes.setdefault(vm.node, NodeSnap(vm.node, online=True))


def _task(item: Any) -> TaskSnap | None:
    from nestctl.vm.collect.api import int_of  # noqa: PLC0415

    if not isinstance(item, dict) or not isinstance(item.get("upid"), str):
        return None
    start = int_of(item.get("starttime"))
    if start is None:
        return None
    status = item.get("status")
    return TaskSnap(
        upid=item["upid"],
        node=str(item.get("node") or ""),
        type=str(item.get("type") or ""),
        id=str(item.get("id") or ""),
        user=str(item.get("user") or ""),
        starttime=start,
        endtime=int_of(item.get("endtime")),
        status=status if isinstance(status, str) and "endtime" in item else None,
    )


def _newest_backups(client: ApiClient) -> dict[int, float] | None:
    """vmid -> the newest backup's ctime, from the backup facts `nestctl backup` reads (every
    backup storage of the online nodes). A guest whose node could not be read is left out;
    None when no backup storage could be read at all (then backup age is not judged)."""
    from nestctl.api.backups import collect_backups, per_guest  # noqa: PLC0415

    facts = collect_backups(client, log_reads=0)
    if not facts.storages:
        return None
    return {
        e.guest.vmid: float(e.last.ctime)
        for e in per_guest(facts)
        if e.node_read and e.last is not None and e.last.ctime
    }


def _bad(message: str) -> Exception:
    from nestctl.api.errors import ApiBadReplyError  # noqa: PLC0415

    return ApiBadReplyError(message)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
