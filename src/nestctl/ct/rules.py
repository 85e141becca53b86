"""What a container can run nested, and the findings for what it wants and cannot: pure.

Workloads (../shared/reference/lxc-nesting.md; pve-container LXC.pm and Config.pm 94f5585):
- docker (and Podman): `nesting=1`; an unprivileged CT also `keyctl=1` (else seccomp answers
  keyctl() with ENOSYS); an explicit `lxc.seccomp.profile` replaces that handling.
- systemd: current systemd distributions sandbox services with namespaces: `nesting=1`.
- kvm: `/dev/kvm` (char 10:232) bound in with the cgroup rule, and a group the CT's kvm users
  are in (`dev<N>: /dev/kvm,gid=<kvm gid in the CT>`); the CT shares the node's kernel, so the
  node's own KVM is what it gets (no vmx/svm passthrough involved).
- fuse: `fuse=1` (binds /dev/fuse and allows `mount fstype=fuse`).

Who may change what (LXC.pm check_ct_modify_config_perm): `nesting` alone needs VM.Allocate;
other features, any feature of a privileged CT, and `dev<N>` only root@pam.
"""

from __future__ import annotations

from dataclasses import dataclass

from nestctl.ct.facts import SYSTEMD_OSTYPES, CtFacts
from nestctl.findings import Finding, error, info, unknown, warning

WORKLOADS = ("docker", "systemd", "kvm", "fuse")


def can_docker(f: CtFacts) -> bool:
    keyctl_ok = f.features.get("keyctl") is True or not f.unprivileged
    return f.features.get("nesting") is True and keyctl_ok and f.seccomp_profile is None


def can_systemd(f: CtFacts) -> bool | None:
    if f.features.get("nesting") is True:
        return True
    if f.ostype in SYSTEMD_OSTYPES or f.ostype is None:  # no ostype: debian, pct's default
        return False
    return None if f.ostype == "unmanaged" else True


def kvm_group_ok(f: CtFacts) -> bool:
    """Not only root but the CT's kvm group can open /dev/kvm: a dev<N> with a gid or a mode
    that lets others in; a privileged CT (host ids are the CT's); or raw lxc.idmap lines that
    map single host groups in (how the node's kvm group is mapped onto the CT's)."""
    dev = f.kvm.device
    if dev is not None:
        return dev.gid is not None or (dev.mode is not None and dev.mode[-1] in "67")
    return not f.unprivileged or f.group_idmap


def can_kvm(f: CtFacts) -> bool | None:
    """Can the container open /dev/kvm (as its root at least)? None: it depends on what the
    config does not say (a raw bind in an unprivileged CT: the node's /dev/kvm mode; a bare
    cgroup rule in a privileged CT: whether the CT creates the node itself)."""
    kvm = f.kvm
    if kvm.device is not None:
        return not kvm.device.deny_write
    if kvm.mount_entry and kvm.cgroup_allowed:
        return None if f.unprivileged and not f.group_idmap else True
    if kvm.cgroup_allowed and not kvm.mount_entry:
        privileged_mknod = not f.unprivileged or f.features.get("mknod") is True
        return None if privileged_mknod else False
    return False


def can_fuse(f: CtFacts) -> bool:
    return f.features.get("fuse") is True or f.fuse_device.usable


def workloads(f: CtFacts) -> dict[str, bool | None]:
    """Which nested workloads this config lets the container run (None: cannot tell)."""
    if not f.readable:
        return dict.fromkeys(WORKLOADS)
    return {
        "docker": can_docker(f),
        "systemd": can_systemd(f),
        "kvm": can_kvm(f),
        "fuse": can_fuse(f),
    }


# -- the fix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CtFix:
    """The smallest config change for some workloads: `pct set` options and the API params."""

    options: tuple[tuple[str, str], ...]  # ("--features", "keyctl=1,nesting=1")
    needs_root: bool  # only root@pam may make it (keyctl/fuse/dev, or a privileged CT)
    note: str | None = None

    def pct(self, vmid: int) -> str:
        return " ".join(["pct", "set", str(vmid), *(a for pair in self.options for a in pair)])

    def api_params(self) -> dict[str, str]:
        return {opt.removeprefix("--"): value for opt, value in self.options}


def features_value(f: CtFacts, turn_on: set[str]) -> str:
    """The features string with `turn_on` set to 1, the rest kept (sorted, as Proxmox prints)."""
    values: dict[str, str] = {}
    for key, value in f.features.items():
        if isinstance(value, str):
            values[key] = value
        elif value:
            values[key] = "1"
    for key in turn_on:
        values[key] = "1"
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


def _free_dev(f: CtFacts) -> str:
    for n in range(256):
        if f"dev{n}" not in f.dev_keys:
            return f"dev{n}"
    return "dev255"


def plan_fix(f: CtFacts, wanted: set[str], *, kvm_gid: int | None = None) -> CtFix | None:
    """The change that makes the `wanted` workloads possible, or None when nothing is missing."""
    turn_on: set[str] = set()
    if "docker" in wanted or "systemd" in wanted:
        if f.features.get("nesting") is not True:
            turn_on.add("nesting")
        if "docker" in wanted and f.unprivileged and f.features.get("keyctl") is not True:
            turn_on.add("keyctl")
    if "fuse" in wanted and not can_fuse(f):
        turn_on.add("fuse")
    options: list[tuple[str, str]] = []
    if turn_on:
        options.append(("--features", features_value(f, turn_on)))
    note = None
    if "kvm" in wanted and can_kvm(f) is not True:
        dev = f.kvm.device
        key = dev.key if dev is not None else _free_dev(f)
        if kvm_gid is not None:
            value = f"/dev/kvm,gid={kvm_gid}"
        else:
            value = "/dev/kvm,mode=0666"
            note = (
                "without --kvm-gid the device is made usable by every user in the CT "
                "(mode 0666); give the kvm group's id inside the CT to limit it to that group"
            )
        options.append((f"--{key}", value))
    if not options:
        return None
    needs_root = bool(turn_on - {"nesting"}) or any(o.startswith("--dev") for o, _ in options)
    needs_root = needs_root or (bool(turn_on) and not f.unprivileged)
    return CtFix(tuple(options), needs_root, note)


# -- findings ---------------------------------------------------------------------------------


def _fix_text(f: CtFacts, fix: CtFix | None) -> str | None:
    return fix.pct(f.vmid) if fix is not None else None


def judged(f: CtFacts, wants: bool | None, *, docker: bool, all_cts: bool) -> set[str]:
    """The workloads to judge: systemd always (graded as a note where nesting is not wanted);
    docker where it is asked for (`docker`: the tag or keyctl=1) or --all; kvm and fuse where
    their device passthrough is (partly) configured."""
    out: set[str] = {"systemd"}
    if (wants and docker) or all_cts:
        out.add("docker")
    if f.kvm.configured:
        out.add("kvm")
    if f.fuse_device.configured and not can_fuse(f):
        out.add("fuse")
    return out


def ct_findings(
    f: CtFacts,
    wants: bool | None,
    *,
    docker: bool = True,
    all_cts: bool = False,
    node_kvm: bool | None = None,
) -> list[Finding]:
    """Findings for one container. `docker`: Docker is asked for (tag or keyctl); `node_kvm`:
    the node's /dev/kvm exists (None: not checked)."""
    label = f"CT {f.vmid}"
    if not f.readable:
        why = "; ".join(f.problems) or "unreadable"
        code = "ct.unreachable" if f.unreachable else "ct.unreadable"
        return [unknown(code, f"{label}: its config could not be read ({why})")]
    out: list[Finding] = [
        warning("ct.config.problem", f"{label}: Proxmox warns about its config: {p}")
        for p in f.problems
    ]
    if f.features_problem:
        out.append(
            error(
                "ct.config.features-invalid",
                f"{label}: Proxmox refuses its features value, so it will not start: "
                f"{f.features_problem.replace(chr(10), '; ')}",
            )
        )
    want = judged(f, wants, docker=docker, all_cts=all_cts)
    for key in sorted(want):
        fix = plan_fix(f, {key})
        out += _workload_findings(f, key, fix, label, node_kvm)
    if f.features.get("nesting") is True and not f.unprivileged:
        out.append(
            warning(
                "ct.nesting.privileged",
                f"{label}: nesting is on in a privileged container: it exposes the node's "
                "procfs and sysfs to a root that is the node's root; Proxmox recommends "
                "nesting only in unprivileged containers",
            )
        )
    if f.features.get("keyctl") is True and not f.unprivileged:
        out.append(
            info(
                "ct.keyctl.privileged",
                f"{label}: keyctl=1 has no effect in a privileged container (keyctl() is not "
                "filtered there)",
            )
        )
    if f.seccomp_profile is not None and (f.features.get("keyctl") or f.features.get("mknod")):
        out.append(
            warning(
                "ct.seccomp.override",
                f"{label}: lxc.seccomp.profile ({f.seccomp_profile}) replaces Proxmox's seccomp "
                "rules, so the keyctl/mknod features do nothing",
            )
        )
    if f.pending_features is not None and f.pending_features != f.features:
        out.append(
            warning(
                "ct.restart-required",
                f"{label}: changed features wait in [pve:pending] and apply at its next start",
                f"pct reboot {f.vmid}" if f.running else f"pct start {f.vmid}",
            )
        )
    if f.lock:
        out.append(
            info(
                "ct.locked",
                f"{label}: Proxmox has it locked ({f.lock}); nestctl will not "
                "change it until the lock is gone",
            )
        )
    return out


def _workload_findings(
    f: CtFacts, key: str, fix: CtFix | None, label: str, node_kvm: bool | None
) -> list[Finding]:
    text = _fix_text(f, fix)
    if key == "docker" and not can_docker(f):
        if f.features.get("nesting") is not True:
            return [
                error(
                    "ct.docker.nesting-off",
                    f"{label}: Docker and Podman need nesting=1 (AppArmor nesting), which is off",
                    text,
                )
            ]
        if f.seccomp_profile is not None:
            return [
                warning(
                    "ct.docker.seccomp-profile",
                    f"{label}: its own lxc.seccomp.profile decides whether Docker may call "
                    "keyctl(); nestctl cannot tell",
                )
            ]
        return [
            error(
                "ct.docker.keyctl-off",
                f"{label}: Docker needs the keyctl() system call, which an unprivileged "
                "container answers with ENOSYS unless keyctl=1",
                text,
            )
        ]
    if key == "systemd" and can_systemd(f) is False:
        os_name = f.ostype or "debian"
        return [
            warning(
                "ct.systemd.nesting-off",
                f"{label}: systemd in {os_name} sandboxes services with namespaces and needs "
                "nesting=1, or some services fail to start",
                text,
            )
        ]
    if key == "kvm":
        return _kvm_findings(f, fix, label, node_kvm)
    if key == "fuse" and not can_fuse(f):
        return [
            error(
                "ct.fuse.off",
                f"{label}: FUSE file systems need fuse=1 (the raw /dev/fuse lines alone are "
                "not enough)",
                text,
            )
        ]
    return []


def _kvm_findings(
    f: CtFacts, fix: CtFix | None, label: str, node_kvm: bool | None
) -> list[Finding]:
    out: list[Finding] = []
    text = _fix_text(f, fix)
    kvm = f.kvm
    if kvm.device is not None and kvm.device.deny_write:
        out.append(
            error(
                "ct.kvm.read-only",
                f"{label}: /dev/kvm is passed in with deny-write=1, so KVM cannot be used (it "
                "needs read and write)",
                text,
            )
        )
    elif kvm.device is None and kvm.mount_entry and not kvm.cgroup_allowed:
        out.append(
            error(
                "ct.kvm.cgroup-missing",
                f"{label}: /dev/kvm is bound in but no lxc.cgroup2.devices.allow rule lets "
                "the container open it (c 10:232 rwm)",
                text,
            )
        )
    elif kvm.device is None and kvm.cgroup_allowed and not kvm.mount_entry:
        if can_kvm(f) is False:
            out.append(
                error(
                    "ct.kvm.not-bound",
                    f"{label}: the cgroup rule allows /dev/kvm but nothing binds it into the "
                    "container (no dev<N> entry, no lxc.mount.entry), and an unprivileged "
                    "container cannot create the node itself",
                    text,
                )
            )
        else:
            out.append(
                unknown(
                    "ct.kvm.not-bound",
                    f"{label}: the cgroup rule allows /dev/kvm but nothing in the config binds "
                    "it in; it works only if the container creates the node itself "
                    "(mknod /dev/kvm c 10 232)",
                    text,
                )
            )
    elif can_kvm(f) is None:
        out.append(
            unknown(
                "ct.kvm.owner-unmapped",
                f"{label}: /dev/kvm is bound in with raw lxc lines; in an unprivileged "
                "container its owner and group are unmapped (nobody:nogroup), so only the "
                "node's file mode decides whether anyone inside may open it; a dev<N> entry "
                "sets the group",
                text,
            )
        )
    elif not kvm_group_ok(f):
        assert kvm.device is not None  # raw binds are group-ok or unknown above
        key = kvm.device.key
        gid = f"$(pct exec {f.vmid} -- getent group kvm | cut -d: -f3)"
        out.append(
            warning(
                "ct.kvm.no-group",
                f"{label}: /dev/kvm is passed in ({key}) without gid or mode: inside the "
                "container only root may open it, not the kvm group",
                f"pct set {f.vmid} --{key} /dev/kvm,gid={gid}",
            )
        )
    if node_kvm is False:
        out.append(
            error(
                "ct.kvm.node-missing",
                f"{label}: the node has no /dev/kvm, so the container cannot have KVM either "
                "(it shares the node's kernel)",
                "nestctl host",
            )
        )
    return out
