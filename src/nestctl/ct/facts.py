"""What a container's config says about nested workloads: pure, from a parsed `CtConfig`.

Where each fact comes from (pve-container 94f5585, src/PVE/LXC.pm and LXC/Config.pm):
- `features` (`$features_desc`): nesting adds `lxc.apparmor.allow_nesting = 1` (LXC.pm ~661);
  unprivileged CTs get `keyctl errno 38` in their seccomp rules unless keyctl=1 (~540-561); an
  explicit `lxc.seccomp.profile` replaces those rules (~525).
- `dev<N>` (`$dev_desc`): the device is created in the CT with uid/gid/mode, and LXC.pm (~770) adds
  the cgroup rule `c MAJOR:MINOR rw` itself.
- Raw lines: `lxc.mount.entry: /dev/kvm dev/kvm none bind,optional,create=file` binds the node,
  `lxc.cgroup2.devices.allow: c 10:232 rwm` lets the CT open it (`/dev/kvm` is char 10:232,
  `/dev/fuse` 10:229).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nestctl.ct.config import CtConfig, parse_device, parse_features
from nestctl.parse import proxmox_bool
from nestctl.vm.intent import vm_tags

KVM_DEVICE = (10, 232)
FUSE_DEVICE = (10, 229)
#: ostypes whose current releases boot with systemd (Debian 12+, Ubuntu 22.04+, ... need nesting
#: for systemd's service sandboxing); alpine and gentoo use OpenRC, `unmanaged` is unknown.
SYSTEMD_OSTYPES = frozenset(
    {"debian", "devuan", "ubuntu", "centos", "fedora", "opensuse", "archlinux", "nixos"}
)
FEATURE_KEYS = ("nesting", "keyctl", "fuse", "mknod", "mount", "force_rw_sys")
_ALLOW = re.compile(r"\s*([abc])\s+(\*|\d+):(\*|\d+)\s*([rwm]*)\s*", re.ASCII)


@dataclass(frozen=True)
class Device:
    """A `dev<N>` passthrough entry."""

    key: str  # dev0
    path: str
    gid: int | None
    uid: int | None
    mode: str | None
    deny_write: bool


@dataclass(frozen=True)
class Passthrough:
    """How one host device reaches the container."""

    device: Device | None  # the dev<N> entry, when there is one
    mount_entry: bool  # a raw lxc.mount.entry binds it
    cgroup_allowed: bool  # a raw lxc.cgroup2.devices.allow (or lxc.cgroup.) lets the CT open it
    named_rule: bool = False  # ... with a rule naming this device (not `a` or `c *:* rwm`)

    @property
    def configured(self) -> bool:
        """Asked for explicitly: a dev<N>, a bind, or a cgroup rule naming this device (a
        catch-all `a` rule, common for GPUs and Docker, asks for nothing in particular)."""
        return self.device is not None or self.mount_entry or self.named_rule

    @property
    def usable(self) -> bool:
        """Bound in and allowed: dev<N> does both; raw lines need the mount and the rule."""
        if self.device is not None:
            return not self.device.deny_write
        return self.mount_entry and self.cgroup_allowed


@dataclass
class CtFacts:
    vmid: int
    name: str
    node: str | None
    running: bool | None  # None: could not tell
    lock: str | None
    template: bool
    unprivileged: bool
    ostype: str | None
    tags: tuple[str, ...]
    features: dict[str, bool | str]  # nesting/keyctl/... as in force (the main section)
    features_problem: str | None  # Proxmox refuses the features string (the CT will not start)
    pending_features: dict[str, bool | str] | None  # [pve:pending] features, when changed there
    kvm: Passthrough
    fuse_device: Passthrough
    apparmor_profile: str | None  # lxc.apparmor.profile, e.g. "unconfined"
    group_idmap: bool  # raw lxc.idmap lines map single host groups in (e.g. the node's kvm)
    seccomp_profile: str | None  # lxc.seccomp.profile (replaces keyctl/mknod handling)
    digest: str
    problems: list[str] = field(default_factory=list)
    readable: bool = True
    unreachable: bool = False
    dev_keys: tuple[str, ...] = ()  # dev<N> keys in use (a new passthrough takes a free one)
    mount_points: tuple[tuple[str, str, str | None], ...] = ()  # (mpN, volume, mp= path)


def _features(text: str | None) -> tuple[dict[str, bool | str], str | None]:
    values, problem = parse_features(text)
    out: dict[str, bool | str] = {}
    for key in FEATURE_KEYS:
        if key == "mount":
            if values.get("mount"):
                out["mount"] = values["mount"]
            continue
        out[key] = values.get(key) == "1"
    return out, problem


def _devices(values: dict[str, str], problems: list[str]) -> list[Device]:
    out = []
    for key in sorted(values):
        m = re.fullmatch(r"dev(\d{1,3})", key, re.ASCII)
        if m is None or int(m.group(1)) >= 256:
            continue
        dev, problem = parse_device(values[key])
        if problem:
            problems.append(f"{key}: {problem}")
            continue
        gid, uid = dev.get("gid"), dev.get("uid")
        out.append(
            Device(
                key=key,
                path=dev.get("path", ""),
                gid=int(gid) if gid is not None else None,
                uid=int(uid) if uid is not None else None,
                mode=dev.get("mode"),
                deny_write=dev.get("deny-write") == "1",
            )
        )
    return out


def _allows(rule: str, device: tuple[int, int]) -> bool:
    """Does one devices.allow rule (`c 10:232 rwm`, `c 10:* rwm`, `a`) open `device` rw?"""
    if rule.strip() == "a":
        return True
    m = _ALLOW.fullmatch(rule)
    if m is None:
        return False
    kind, major, minor, access = m.groups()
    return (
        kind in ("a", "c")
        and major in ("*", str(device[0]))
        and minor in ("*", str(device[1]))
        and "r" in access
        and "w" in access
    )


def _mount_binds(value: str, path: str) -> bool:
    """`lxc.mount.entry: /dev/kvm dev/kvm none bind,optional,create=file` binds `path`."""
    parts = value.split()
    return len(parts) >= 2 and parts[0] == path and parts[1].lstrip("/") == path.lstrip("/")


def _passthrough(
    path: str, number: tuple[int, int], devices: list[Device], raw: list[tuple[str, str]]
) -> Passthrough:
    device = next((d for d in devices if d.path == path), None)
    mount = any(k == "lxc.mount.entry" and _mount_binds(v, path) for k, v in raw)
    rules = [v for k, v in raw if k in ("lxc.cgroup2.devices.allow", "lxc.cgroup.devices.allow")]
    allowed = any(_allows(v, number) for v in rules)
    named = any(_allows(v, number) and f"{number[0]}:{number[1]}" in v for v in rules)
    return Passthrough(device, mount, allowed, named)


def _last(raw: list[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in raw if k == key]
    return values[-1] if values else None


def ct_facts(conf: CtConfig, *, running: bool | None, name: str | None = None) -> CtFacts:
    """The facts of one parsed config (its main section: what a start uses)."""
    main = conf.main
    problems = list(conf.problems)
    features, features_problem = _features(main.get("features"))
    pending: dict[str, bool | str] | None = None
    if "features" in conf.pending:
        pending, _ = _features(conf.pending["features"])
    elif any(key == "features" for key, _force in conf.pending_delete):
        pending, _ = _features(None)
    devices = _devices(main, problems)
    tags = tuple(vm_tags(main))  # as the VMs' intent reads them (lower-case, ; , or space)
    lock = main.get("lock") or None
    return CtFacts(
        vmid=conf.vmid,
        name=name or main.get("hostname") or f"CT{conf.vmid}",
        node=conf.node,
        running=running,
        lock=lock,
        template=proxmox_bool(main.get("template")) is True,
        unprivileged=proxmox_bool(main.get("unprivileged")) is True,
        ostype=main.get("ostype"),
        tags=tags,
        features=features,
        features_problem=features_problem,
        pending_features=pending,
        kvm=_passthrough("/dev/kvm", KVM_DEVICE, devices, conf.lxc),
        fuse_device=_passthrough("/dev/fuse", FUSE_DEVICE, devices, conf.lxc),
        apparmor_profile=_last(conf.lxc, "lxc.apparmor.profile"),
        group_idmap=any(
            k == "lxc.idmap" and re.fullmatch(r"\s*g\s+\d+\s+\d+\s+1\s*", v, re.ASCII) is not None
            for k, v in conf.lxc
        ),
        seccomp_profile=_last(conf.lxc, "lxc.seccomp.profile"),
        digest=conf.digest,
        problems=problems,
        readable=conf.readable,
        unreachable=conf.unreachable,
        dev_keys=tuple(k for k in main if re.fullmatch(r"dev\d{1,3}", k, re.ASCII)),
        mount_points=_mount_points(main),
    )


def _mount_points(main: dict[str, str]) -> tuple[tuple[str, str, str | None], ...]:
    """`mp<N>: <volume>,mp=<path>[,...]` (Config.pm $mp_desc: `volume` is the default key)."""
    out = []
    for key in sorted(main):
        if re.fullmatch(r"mp\d{1,3}", key, re.ASCII) is None:
            continue
        volume, path = "", None
        for part in main[key].split(","):
            name, eq, value = part.partition("=")
            if not eq and not volume:
                volume = part
            elif name == "volume":
                volume = value
            elif name == "mp":
                path = value
        out.append((key, volume, path))
    return tuple(out)
