"""Data shapes shared by the VM layer's parser, predictor and rules (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VmConfig:
    """A Proxmox VM config as `parse_vm_config` reads it (reference §1.2).

    Values are raw strings exactly as in the file (trailing whitespace stripped, `cdrom` renamed
    to `ide2`). `problems` collects what Proxmox would warn about (garbage lines, duplicate keys,
    unknown sections), so a bad file gives findings, never an exception. A key written twice
    keeps its last value, as Proxmox does. `description` holds the main section's `#` lines;
    pending and snapshot descriptions sit under the "description" key of their dicts.
    """

    vmid: int
    path: str
    main: dict[str, str] = field(default_factory=dict)
    description: str = ""
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: list[tuple[str, bool]] = field(default_factory=list)  # (key, force)
    snapshots: dict[str, dict[str, str]] = field(default_factory=dict)
    special: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    digest: str = ""
    node: str | None = None  # cluster node whose qemu-server directory holds the file
    readable: bool = True  # False: the file was missing or unreadable (see problems)

    def current(self) -> dict[str, str]:
        """The values in force (what `qm config --current` shows)."""
        return dict(self.main)

    def with_pending(self) -> dict[str, str]:
        """The values after pending changes apply (what the next Proxmox start uses)."""
        conf = dict(self.main)
        conf.update(self.pending)
        for key, _force in self.pending_delete:
            conf.pop(key, None)
        return conf

    @property
    def has_pending(self) -> bool:
        return bool(self.pending or self.pending_delete)


@dataclass(frozen=True)
class CpuEnv:
    """Everything outside the VM config that Proxmox's -cpu depends on (reference §3.1)."""

    host_vendor: str = "GenuineIntel"  # "GenuineIntel" | "AuthenticAMD"
    host_flags: frozenset[str] | None = None  # host /proc/cpuinfo flags (resolves nested-virt)
    host_arch: str = "x86_64"
    qemu_version: tuple[int, int, int] = (11, 0, 0)  # installed QEMU binary (pve-qemu-kvm)
    qemu_server_version: tuple[int, ...] | None = None  # None: newest behaviour we know (9.2.6)
    custom_models: dict[str, dict[str, str]] = field(default_factory=dict)  # name (no custom-)
    nodename: str = "localhost"  # named in Proxmox's "please upgrade node" errors
    qemu_version_text: str | None = None  # as QEMU reports it ("9.0"), for Proxmox's messages


@dataclass(frozen=True)
class CpuPrediction:
    """The `-cpu` value Proxmox would build, unquoted, or the error Proxmox would die with."""

    value: str | None
    error: str | None = None
    warnings: tuple[str, ...] = ()
    machine: str | None = None  # the `-machine type=` value, where modelled
    replaced_by_args: str | None = None  # a `-cpu` in `args:` that QEMU uses instead
    stdout: tuple[
        str, ...
    ] = ()  # lines Proxmox prints, e.g. "CPU flag 'nested-virt' resolved to 'vmx'"
