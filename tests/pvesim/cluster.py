"""The simulated cluster's state: nodes, their VMs, guests, firewall and tasks.

Built from fixture directories (see README.md: one local-mode root per node, the same trees
nestctl reads with `--root`) or by `generate.py`. Every handler reads and changes this state under
`Cluster.lock`; tasks finish lazily, when a later request looks (`Cluster.tick`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.pvesim.ctconf import CtConf, parse_ct_conf
from tests.pvesim.storage import StorageState, default_storages, load_storage
from tests.pvesim.vmconf import VmConf, parse_conf

_PID_BASE = 0x1000


@dataclass
class ExecAnswer:
    """What the guest answers to one `agent/exec` command line."""

    command: list[str]
    exitcode: int = 0
    out_data: str = ""
    err_data: str = ""


@dataclass
class Guest:
    """The guest agent's answers; `root` is a guest tree whose files `file-read` returns."""

    running: bool = True  # False: "QEMU guest agent is not running"
    osinfo: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    root: Path | None = None
    exec_answers: list[ExecAnswer] = field(default_factory=list)
    exec_runs: dict[int, tuple[ExecAnswer | None, float]] = field(default_factory=dict)
    exec_seconds: float = 0.0  # how long a command runs before exec-status says exited

    def read(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        if self.root is not None:
            real = self.root / path.lstrip("/")
            if real.is_file():
                return real.read_bytes()
        return None


@dataclass
class Vm:
    vmid: int
    node: str
    conf: VmConf
    status: str = "stopped"  # running | stopped | paused (qmpstatus)
    running_machine: str | None = None
    running_cpu: str | None = None  # the -cpu QEMU got at the last cold start
    pid: int | None = None
    started: float = 0.0
    guest: Guest | None = None
    firewall_options: dict[str, Any] = field(default_factory=dict)
    firewall_rules: list[dict[str, Any]] = field(default_factory=list)
    task_errors: dict[str, str] = field(default_factory=dict)  # action -> the error it ends in

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused")


@dataclass
class Ct:
    """A container (pve-container): its config, and whether it runs or is frozen (suspended)."""

    vmid: int
    node: str
    conf: CtConf
    # running | stopped | suspended (pct suspend is a CRIU checkpoint: the CT stops, its state
    # is dumped, and `resume` restores it; the API reports a suspended CT as stopped)
    status: str = "stopped"
    pid: int | None = None
    started: float = 0.0
    firewall_options: dict[str, Any] = field(default_factory=dict)
    firewall_rules: list[dict[str, Any]] = field(default_factory=list)
    task_errors: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass
class Task:
    upid: str
    node: str
    type: str
    id: str
    user: str
    starttime: int
    pid: int
    pstart: int
    ends: float
    finish: Callable[[], str | None] | None  # applies the change; returns an error text
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    log: list[str] = field(default_factory=list)


@dataclass
class Node:
    name: str
    version: str = "9.2.2"  # pve-manager
    packages: dict[str, str] = field(default_factory=dict)
    cpu_model: str = "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
    cpu_flags: str = "fpu vme de pse tsc msr pae mce cx8 apic sep sse sse2 ht vmx"
    cpus: int = 8
    sockets: int = 1
    cores: int = 8
    mhz: str = "2100.000"
    kernel: str = "6.14.8-2-pve"
    boot_mode: str = "efi"
    secureboot: bool = False
    online: bool = True
    back_at: float | None = None  # when a rebooting node answers again
    ip: str = "192.0.2.11"
    memory_total: int = 67_413_229_568
    uptime_since: float = field(default_factory=lambda: time.time() - 86_400)
    vms: dict[int, Vm] = field(default_factory=dict)
    cts: dict[int, Ct] = field(default_factory=dict)
    firewall_options: dict[str, Any] = field(default_factory=dict)
    firewall_rules: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, Task] = field(default_factory=dict)
    cpu_flags_supported: list[str] | None = None  # for capabilities/qemu/cpu-flags
    root: Path | None = None  # the local-mode fixture root it was built from
    # Storage "local" on this node: (used, total) bytes as /cluster/resources reports them (a
    # test fills it under `lock`); backups live in `Cluster.storage` (storage.py).
    storage_usage: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"local": (12_884_901_888, 101_203_873_792)}
    )
    #: The kvm module's nested parameter (fixture sys/module/kvm_*/parameters/nested), as
    #: pvestatd's last probe saw it: what cpu-flags' `supported-on` reports (9.1.17+).
    nested_param: bool | None = None

    @property
    def qemu_server(self) -> tuple[int, ...]:
        """qemu-server's version (dpkg status or node.json `packages`); () when unknown."""
        return tuple(int(x) for x in re.findall(r"\d+", self.packages.get("qemu-server", "")))[:3]

    @property
    def major_minor(self) -> tuple[int, int]:
        m = re.match(r"(\d+)\.(\d+)", self.version)
        return (int(m.group(1)), int(m.group(2))) if m else (9, 0)

    @property
    def qemu_version(self) -> str:
        raw = self.packages.get("pve-qemu-kvm", "10.0.2-4")
        return raw.split("-")[0]

    @property
    def repoid(self) -> str:
        full = hashlib.sha1(self.version.encode()).hexdigest()
        return full[:8] if self.major_minor < (8, 0) else full[:16]


@dataclass
class Cluster:
    name: str | None = "lab"  # None: a standalone node (no /cluster/status cluster entry)
    nodes: dict[str, Node] = field(default_factory=dict)
    firewall_options: dict[str, Any] = field(default_factory=lambda: {"enable": 0})
    firewall_rules: list[dict[str, Any]] = field(default_factory=list)
    task_seconds: float = 0.2  # how long a power task runs
    node_reboot_seconds: float = 1.0  # how long a rebooting node is unreachable
    lock: threading.RLock = field(default_factory=threading.RLock)
    running_tasks: list[Task] = field(default_factory=list)
    storage: StorageState = field(default_factory=default_storages)  # storage.cfg, backups, jobs
    _next_pid: int = _PID_BASE

    @property
    def entry(self) -> Node:
        """The node the API is reached on (answers /version)."""
        return next(iter(self.nodes.values()))

    def vm(self, vmid: int) -> Vm:
        for node in self.nodes.values():
            if vmid in node.vms:
                return node.vms[vmid]
        raise KeyError(vmid)

    def all_vms(self) -> list[Vm]:
        return sorted(
            (vm for n in self.nodes.values() for vm in n.vms.values()), key=lambda v: v.vmid
        )

    def ct(self, vmid: int) -> Ct:
        for node in self.nodes.values():
            if vmid in node.cts:
                return node.cts[vmid]
        raise KeyError(vmid)

    def all_cts(self) -> list[Ct]:
        return sorted(
            (ct for n in self.nodes.values() for ct in n.cts.values()), key=lambda c: c.vmid
        )

    def next_pid(self) -> int:
        self._next_pid += 1
        return self._next_pid

    def tick(self) -> None:
        """Finish every task whose time has come (lazily, so no thread per task)."""
        now = time.time()
        with self.lock:
            for node in self.nodes.values():
                if node.back_at is not None and now >= node.back_at:
                    node.online, node.back_at, node.uptime_since = True, None, now
            due = [t for t in self.running_tasks if now >= t.ends]
            for task in due:
                self.running_tasks.remove(task)
                if task.status == "running":
                    finish_task(task)

    # -- changes a test makes behind the client's back --------------------------------------------

    def edit_config(self, vmid: int, **values: str) -> str:
        """Change a VM's config as another admin would; returns the new digest."""
        with self.lock:
            conf = self.vm(vmid).conf
            conf.main.update(values)
            conf.touch()
            return conf.digest

    def edit_ct_config(self, vmid: int, **values: str) -> str:
        """Change a container's config as another admin would; returns the new digest."""
        with self.lock:
            conf = self.ct(vmid).conf
            conf.main.update(values)
            conf.touch()
            return conf.digest

    def set_node_online(self, node: str, online: bool) -> None:
        """Take a node off the network (its proxied calls get 595) or bring it back."""
        with self.lock:
            self.nodes[node].online = online
            self.nodes[node].back_at = None

    def reboot_node_later(self, node: str) -> None:
        self.nodes[node].back_at = time.time() + self.node_reboot_seconds


def finish_task(task: Task, error: str | None = None) -> None:
    if task.finish is not None and error is None:
        error = task.finish()
    task.status = "stopped"
    task.endtime = int(time.time())
    task.exitstatus = "OK" if error is None else error
    task.log.append("TASK OK" if error is None else f"TASK ERROR: {error}")


# -- reading fixture directories -------------------------------------------------------------------


def load_cluster(directory: Path) -> Cluster:
    """A cluster from `directory`: cluster.json (optional) and nodes/<name>/ fixture roots."""
    meta: dict[str, Any] = {}
    if (directory / "cluster.json").is_file():
        meta = json.loads((directory / "cluster.json").read_text())
    cluster = Cluster(name=meta.get("name", directory.name))
    if "firewall" in meta:
        cluster.firewall_options = dict(meta["firewall"].get("options", {}))
        cluster.firewall_rules = [dict(r) for r in meta["firewall"].get("rules", [])]
    cluster.storage = load_storage(meta)
    for node_dir in sorted(p for p in (directory / "nodes").iterdir() if p.is_dir()):
        node = load_node(node_dir, cluster)
        cluster.nodes[node.name] = node
    order = meta.get("entry")
    if order in cluster.nodes:  # the node the API is reached on comes first
        cluster.nodes = {order: cluster.nodes[order]} | cluster.nodes
    return cluster


def load_node(root: Path, cluster: Cluster) -> Node:
    extra: dict[str, Any] = {}
    if (root / "node.json").is_file():
        extra = json.loads((root / "node.json").read_text())
    node = Node(name=extra.get("name", root.name), root=root)
    node.packages = dpkg_versions(_text(root / "var/lib/dpkg/status"))
    node.packages.update({str(k): str(v) for k, v in extra.get("packages", {}).items()})
    for module in ("kvm_intel", "kvm_amd"):
        raw = _text(root / f"sys/module/{module}/parameters/nested").strip()
        if raw:
            node.nested_param = raw in ("Y", "1")
    node.version = extra.get("pve_manager", node.packages.get("pve-manager", node.version))
    apply_cpuinfo(node, _text(root / "proc/cpuinfo"))
    for key in (
        "cpus",
        "sockets",
        "cores",
        "mhz",
        "kernel",
        "boot_mode",
        "secureboot",
        "online",
        "ip",
    ):
        if key in extra:
            setattr(node, key, extra[key])
    node.cpu_flags_supported = extra.get("cpu_flags_supported")
    fw = extra.get("firewall", {})
    node.firewall_options = dict(fw.get("options", {}))
    node.firewall_rules = [dict(r) for r in fw.get("rules", [])]
    for conf_path in _conf_files(root, node.name):
        vmid = int(conf_path.stem)
        vm = Vm(vmid, node.name, parse_conf(conf_path.read_text()))
        _running_state(vm, root, node, cluster)
        vm_extra = extra.get("vms", {}).get(str(vmid), {})
        vm.firewall_options = dict(vm_extra.get("firewall", {}).get("options", {}))
        vm.firewall_rules = [dict(r) for r in vm_extra.get("firewall", {}).get("rules", [])]
        if vm_extra.get("status") == "paused" and vm.running:
            vm.status = "paused"
        vm.guest = _load_guest(root / "guests" / str(vmid))
        node.vms[vmid] = vm
    _load_cts(root, node, extra, cluster)
    return node


def _load_cts(root: Path, node: Node, extra: dict[str, Any], cluster: Cluster) -> None:
    """Containers from etc/pve/lxc/<vmid>.conf; running ones have their command socket in
    proc/net/unix (`@/var/lib/lxc/<vmid>/command`, as PVE::LXC::list_active_containers reads)."""
    active = set(re.findall(r"@/var/lib/lxc/(\d+)/command$", _text(root / "proc/net/unix"), re.M))
    found: dict[str, Path] = {}
    for where in (root / "etc/pve/nodes" / node.name / "lxc", root / "etc/pve/lxc"):
        if where.is_dir():
            for p in where.glob("*.conf"):
                if p.stem.isdigit():
                    found.setdefault(p.stem, p)
    for stem in sorted(found, key=int):
        vmid = int(stem)
        ct = Ct(vmid, node.name, parse_ct_conf(found[stem].read_text()))
        ct_extra = extra.get("cts", {}).get(stem, {})
        if stem in active:
            ct.status, ct.pid, ct.started = "running", cluster.next_pid(), time.time() - 3600
        elif ct_extra.get("status") == "suspended":
            ct.status = "suspended"
        ct.firewall_options = dict(ct_extra.get("firewall", {}).get("options", {}))
        ct.firewall_rules = [dict(r) for r in ct_extra.get("firewall", {}).get("rules", [])]
        node.cts[vmid] = ct


def _conf_files(root: Path, name: str) -> list[Path]:
    found: dict[str, Path] = {}
    for where in (root / "etc/pve/nodes" / name / "qemu-server", root / "etc/pve/qemu-server"):
        if where.is_dir():
            for p in where.glob("*.conf"):
                if p.stem.isdigit():
                    found.setdefault(p.stem, p)
    return [found[k] for k in sorted(found, key=int)]


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def dpkg_versions(status: str) -> dict[str, str]:
    """Installed package versions from /var/lib/dpkg/status text."""
    out: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[:1] != " "
        )
        installed = "installed" in fields.get("Status", "installed")
        if "Package" in fields and "Version" in fields and installed:
            out[fields["Package"]] = fields["Version"]
    return out


def apply_cpuinfo(node: Node, text: str) -> None:
    """Model, flags, MHz and counts from /proc/cpuinfo text, as pve-common's read_cpuinfo."""
    if not text:
        return
    fields: dict[str, str] = {}
    cpus, physical = 0, set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor":
            cpus += 1
        elif key == "physical id":
            physical.add(value)
        fields.setdefault(key, value)
    node.cpu_model = fields.get("model name", node.cpu_model)
    node.cpu_flags = fields.get("flags", node.cpu_flags)
    if "cpu MHz" in fields:
        node.mhz = fields["cpu MHz"]
    node.cpus = max(cpus, 1)
    node.sockets = max(len(physical), 1)
    node.cores = int(fields.get("cpu cores", node.cpus // node.sockets) or 1)


def set_running(vm: Vm, pid: int, argv: list[str]) -> None:
    """A VM running as the QEMU process `argv` (its last -machine and -cpu count, as in QEMU)."""
    vm.status, vm.pid, vm.started = "running", pid, time.time() - 3600
    for i, arg in enumerate(argv[:-1]):
        if arg == "-machine":
            m = re.search(r"(?:^|,)type=([^,]+)", argv[i + 1])
            vm.running_machine = m.group(1) if m else argv[i + 1].split(",")[0]
        if arg == "-cpu":
            vm.running_cpu = argv[i + 1]


def _running_state(vm: Vm, root: Path, node: Node, cluster: Cluster) -> None:
    """Running when the fixture has the pid file and /proc/<pid>/cmdline (vmtrees.run_vm)."""
    for piddir in ("var/run/qemu-server", "run/qemu-server"):
        pidfile = root / piddir / f"{vm.vmid}.pid"
        if pidfile.is_file():
            break
    else:
        return
    pid_text = pidfile.read_text().strip()
    cmdline = root / "proc" / pid_text / "cmdline"
    if not pid_text.isdigit() or not cmdline.is_file():
        return
    set_running(vm, int(pid_text), cmdline.read_bytes().decode(errors="replace").split("\0"))


def _load_guest(directory: Path) -> Guest | None:
    if not directory.is_dir():
        return None
    meta: dict[str, Any] = {}
    if (directory / "guest.json").is_file():
        meta = json.loads((directory / "guest.json").read_text())
    answers = [
        ExecAnswer(
            list(a["command"]),
            int(a.get("exitcode", 0)),
            a.get("out-data", ""),
            a.get("err-data", ""),
        )
        for a in meta.get("exec", [])
    ]
    return Guest(
        running=bool(meta.get("running", True)),
        osinfo=dict(meta.get("osinfo", {})),
        root=directory / "root" if (directory / "root").is_dir() else None,
        exec_answers=answers,
    )
