"""Plan `nestctl host enable|disable`: pure over the probed facts and the files' current text.

The plan says which files change (with unified diffs), which commands would run, why a reload is
not possible, or why the whole change is refused. `apply.py` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nestctl.host import modprobe
from nestctl.host.kvm import INT_TYPED_NESTED
from nestctl.host.values import kernel_param_bool

if TYPE_CHECKING:
    from nestctl.host.probe import HostFacts
    from nestctl.machine import Host

ETC_DIR = "/etc/modprobe.d"
BACKUP_DIR = "/var/backups/nestctl"
MANAGED_FILES = {
    "kvm_intel": "/etc/modprobe.d/kvm-intel.conf",
    "kvm_amd": "/etc/modprobe.d/kvm-amd.conf",
}


def managed_header(module: str) -> str:
    return (
        f"# Managed by nestctl (nestctl host enable/disable): nested virtualization for {module}.\n"
        "# Changes here are kept; nestctl edits only the `nested` option.\n"
    )


def nested_value_text(module: str, on: bool) -> str:
    """The spelling the module's own sysfs uses: kvm_amd's int (1/0), kvm_intel's bool (Y/N)."""
    if module in INT_TYPED_NESTED:
        return "1" if on else "0"
    return "Y" if on else "N"


class PlanError(Exception):
    """A file the plan must change cannot be read: refuse rather than overwrite it blindly."""


def _must_read(host: Host, path: str, config: modprobe.ModprobeConfig) -> str:
    if path in config.masked:
        return ""  # a symlink to /dev/null: what modprobe reads is empty
    text = host.read_text(path)
    if text is None:
        raise PlanError(f"{path} cannot be read; refusing to change it without knowing its content")
    return text


def _symlink_in_the_way(host: Host, path: str) -> str | None:
    """The target of a symlink at `path` (the plan must name it), or None for a regular file or
    nothing; anything else there is refused."""
    import stat  # noqa: PLC0415 - only plans pay for it

    st = host.lstat(path)
    if st is None or stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISLNK(st.st_mode):
        return host.readlink(path) or "?"
    raise PlanError(f"{path} exists but is not a regular file; refusing to replace it")


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    old: str | None  # None: the file does not exist yet
    new: str
    reason: str
    symlink: str | None = None  # the path is now a symlink to this: the plan replaces the link

    @property
    def kind(self) -> str:
        if self.symlink is not None:
            return "replace-symlink"
        return "write" if self.old is None or "managed" in self.reason else "comment-out"

    def diff(self) -> str:
        import difflib  # noqa: PLC0415 - only plans pay for it

        old_lines = (self.old or "").splitlines(keepends=True)
        new_lines = self.new.splitlines(keepends=True)
        return "".join(
            difflib.unified_diff(
                old_lines,
                new_lines,
                fromfile="/dev/null" if self.old is None else f"a{self.path}",
                tofile=f"b{self.path}",
            )
        )


@dataclass(frozen=True, slots=True)
class Plan:
    action: str  # "enable" or "disable"
    module: str | None
    desired: bool
    value: str | None  # "Y", "N", "1", "0"
    managed_file: str | None
    refusal: str | None = None
    files: tuple[FileChange, ...] = ()
    reload: tuple[tuple[str, ...], ...] = ()  # commands to run, in order
    reload_needed: bool = False  # the live value differs from the wanted one
    reload_blockers: tuple[str, ...] = ()  # why the reload cannot happen now
    notes: tuple[str, ...] = field(default=())

    @property
    def nothing_to_do(self) -> bool:
        return self.refusal is None and not self.files and not self.reload_needed

    def steps(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for fc in self.files:
            step = {"kind": fc.kind, "path": fc.path, "reason": fc.reason, "diff": fc.diff()}
            if fc.symlink is not None:
                step["symlink"] = fc.symlink
            out.append(step)
        for argv in self.reload:
            out.append({"kind": "command", "argv": list(argv)})
        return out


def comment_out(text: str, directives: list[modprobe.Directive], marker: str) -> str:
    """Prefix each physical line of `directives` with `marker`; keep their other options.

    A line like ``options kvm_intel nested=0 ept=1`` loses only ``nested``: the remaining options
    follow on a new line, so nothing but the conflict changes meaning. A directive that ends in a
    backslash at the end of the file gets an empty line before that new line, or kmod would join
    the new line to the comment.
    """
    lines = text.split("\n")
    extra_after: dict[int, list[str]] = {}
    for d in directives:
        for n in range(d.lineno, d.last_lineno + 1):
            if n - 1 < len(lines) and lines[n - 1]:
                lines[n - 1] = f"{marker}{lines[n - 1]}"
        kept = [w for w in d.args if w.partition("=")[0].replace("-", "_") != "nested"]
        if kept and d.module:
            last = lines[d.last_lineno - 1] if d.last_lineno - 1 < len(lines) else ""
            extra = [""] if last.endswith("\\") else []
            extra_after[d.last_lineno] = [*extra, f"options {d.module} {' '.join(kept)}"]
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        out.append(line)
        out.extend(extra_after.get(number, ()))
    return "\n".join(out)


def ends_open(text: str) -> str:
    """`text` ready for a line to be appended: newline-terminated, and not inside a continuation
    (a last line ending in a backslash would swallow the appended line, comment or not)."""
    if text and not text.endswith("\n"):
        text += "\n"
    if text.removesuffix("\n").endswith("\\"):
        text += "\n"
    return text


def _conflicts(
    directives: list[modprobe.Directive], module: str, desired: bool
) -> list[modprobe.Directive]:
    int_typed = module in INT_TYPED_NESTED
    return [
        d
        for d in directives
        if d.module == module
        and any(
            kernel_param_bool(v, int_typed=int_typed) != desired for v in d.option_values("nested")
        )
    ]


def _managed_change(
    host: Host, config: modprobe.ModprobeConfig, module: str, desired: bool, value: str
) -> FileChange | None:
    path = MANAGED_FILES[module]
    name = path.rsplit("/", 1)[-1]
    effective = config.path_of(name)
    base: str | None = None
    prefix = ""
    if effective is not None:
        base = _must_read(host, effective, config)
        if effective != path:
            prefix = (
                f"# nestctl: copy of {effective}, which this file hides (modprobe reads one).\n"
            )
    old = base if effective == path else None
    text = base or managed_header(module)  # nothing there, empty, or a /dev/null mask
    directives = modprobe.parse_modprobe(text, path)
    text = comment_out(text, _conflicts(directives, module, desired), "# nestctl: replaced: ")
    remaining = [
        d
        for d in modprobe.parse_modprobe(text, path)
        if d.module == module and d.option_values("nested")
    ]
    if not remaining:
        text = ends_open(text) + f"options {module} nested={value}\n"
    new = prefix + text
    link = _symlink_in_the_way(host, path)
    if old is not None and new == old and link is None:
        return None
    reason = "managed file" if effective in (None, path) else f"managed file (hides {effective})"
    if link is not None:
        reason += _replacing(path, link, config)
    return FileChange(path, old, new, reason, link)


def _replacing(path: str, link: str, config: modprobe.ModprobeConfig) -> str:
    if path in config.masked:
        return (
            f"; replaces the symlink {path} -> {link}, an admin's mask: the new file masks "
            "any same-named file in /lib or /usr/lib the same way (the link is backed up)"
        )
    return (
        f"; replaces the symlink {path} -> {link} with a regular file (its target is not "
        "changed; the link is backed up)"
    )


def _other_changes(
    host: Host, config: modprobe.ModprobeConfig, module: str, desired: bool, managed: str
) -> list[FileChange]:
    changes: list[FileChange] = []
    by_file: dict[str, list[modprobe.Directive]] = {}
    for d in _conflicts(list(config.directives), module, desired):
        if d.path.rsplit("/", 1)[-1] == managed.rsplit("/", 1)[-1]:
            continue  # the managed file's own name: handled by _managed_change
        by_file.setdefault(d.path, []).append(d)
    marker = f"# nestctl: disabled, conflicts with {managed}: "
    for path, directives in by_file.items():
        text = _must_read(host, path, config)
        new = comment_out(text, directives, marker)
        if path.startswith(ETC_DIR + "/"):
            reason = "comment out the conflicting line(s)"
            link = _symlink_in_the_way(host, path)
            if link is not None:
                reason += _replacing(path, link, config)
            changes.append(FileChange(path, text, new, reason, link))
        else:
            # Files under /lib, /usr/lib, /run belong to packages or the boot: hide, do not edit.
            target = f"{ETC_DIR}/{path.rsplit('/', 1)[-1]}"
            header = f"# nestctl: copy of {path}, which this file hides (modprobe reads one).\n"
            changes.append(
                FileChange(
                    target, None, header + new, f"hide {path} with a copy without the conflict"
                )
            )
    return changes


def _reload_blockers(facts: HostFacts, no_reload: bool) -> list[str]:
    mod = facts.module
    blockers: list[str] = []
    if no_reload:
        blockers.append("--no-reload given")
    if mod is None:
        return blockers
    if facts.running.vms:
        for vmid, pid in facts.running.vms.items():
            blockers.append(f"VM {vmid} is running (pid {pid}): qm shutdown {vmid}")
    for p in facts.running.others:
        blockers.append(f"QEMU process {p.pid} ({p.argv0}) holds KVM")
    for vmid, reason in facts.running.unknown.items():
        blockers.append(f"whether VM {vmid} runs is unknown ({reason}): run as root")
    for problem in facts.running.problems:
        blockers.append(f"running VMs cannot be listed ({problem}): run as root")
    if mod.holders:
        blockers.append(f"modules depend on {mod.name}: {', '.join(mod.holders)}")
    if mod.refcount is None:
        blockers.append(f"/sys/module/{mod.name}/refcnt cannot be read: the module may be in use")
    elif mod.refcount > 0 and not (facts.running.vms or facts.running.others):
        blockers.append(f"{mod.name} is in use (refcount {mod.refcount})")
    return blockers


def _host_refusal(facts: HostFacts, action: str) -> str | None:
    """Why this host's `nested` cannot be changed by modprobe.d at all, or None."""
    module = facts.expected_module
    if facts.cpuinfo is None:
        return f"cannot read /proc/cpuinfo ({facts.cpuinfo_error})"
    if module is None:
        return (
            f"unknown CPU vendor {facts.cpuinfo.vendor_id or '(none)'!r}: nestctl changes "
            "kvm_intel and kvm_amd only"
        )
    if facts.virt_flag is None:
        return "the CPU shows neither vmx nor svm: there is no KVM nesting to " + action
    if facts.expected_builtin is None:
        mod = facts.module
        evidence = f" ({mod.builtin_evidence})" if mod is not None else ""
        return (
            f"cannot tell whether {module} is built into the kernel{evidence}: modprobe.d "
            "applies only to a loadable module; check with lsmod on the host itself"
        )
    if facts.expected_builtin:
        return (
            f"{module} is built into the kernel: modprobe.d does not apply; set "
            f"{module}.nested= on the kernel command line instead"
        )
    return None


def plan_change(host: Host, facts: HostFacts, action: str, *, no_reload: bool = False) -> Plan:
    desired = action == "enable"
    module = facts.expected_module
    refusal = _host_refusal(facts, action)
    if refusal is not None or module is None:
        return Plan(action, module, desired, None, None, refusal=refusal)
    value = nested_value_text(module, desired)
    managed = MANAGED_FILES[module]
    after = facts.nested_after_reboot
    if after.decided_by == "kernel command line" and after.value is not desired:
        refusal = (
            f"the kernel command line sets {module}.nested={after.raw}, which wins over "
            "modprobe.d (and over a reload); change it in /etc/kernel/cmdline or "
            "/etc/default/grub first"
        )
    config = facts.modprobe_config
    files: list[FileChange] = []
    conflicts = _conflicts(list(config.directives), module, desired)
    if refusal is None and (conflicts or after.value is not desired):
        try:
            managed_change = _managed_change(host, config, module, desired, value)
            others = _other_changes(host, config, module, desired, managed)
        except PlanError as exc:
            refusal = str(exc)
        else:
            if managed_change is not None:
                files.append(managed_change)
            files.extend(others)
    if refusal is not None:
        return Plan(action, module, desired, value, managed, refusal=refusal)
    notes: list[str] = []
    mod = facts.module
    reload_needed = mod is not None and facts.nested_live is not desired
    if mod is None:
        notes.append(f"{module} is not loaded: the setting applies when it is (modprobe {module})")
    blockers = _reload_blockers(facts, no_reload) if reload_needed else []
    reload: tuple[tuple[str, ...], ...] = ()
    if reload_needed and not blockers:
        reload = (("modprobe", "-r", module), ("modprobe", module))
    return Plan(
        action,
        module,
        desired,
        value,
        managed,
        files=tuple(files),
        reload=reload,
        reload_needed=reload_needed,
        reload_blockers=tuple(blockers),
        notes=tuple(notes),
    )
