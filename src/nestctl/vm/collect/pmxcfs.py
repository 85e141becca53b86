"""The cluster file system collector: every VM config of a cluster over one SSH connection.

Each node's /etc/pve is the same cluster file system (pmxcfs): /etc/pve/nodes/<node>/qemu-server/
holds every node's VM configs. One `tar` of those directories over SSH (as root, with the
cluster's own SSH trust) replaces a request per VM: the fast path for `--ssh`. The configs are
parsed in memory, never written to disk; the custom CPU models come along in the same archive.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from typing import IO

from nestctl.machine import Runner
from nestctl.machine.processes import PIPE, TimeoutExpired
from nestctl.machine.ssh import SshMachine
from nestctl.vm.config import parse_vm_config
from nestctl.vm.model import VmConfig

#: The one remote command: configs of every node, and the custom CPU models if any.
REMOTE_TAR = (
    "cd / && tar -cf - --ignore-failed-read etc/pve/nodes/*/qemu-server "
    "$(test -e etc/pve/virtual-guest/cpu-models.conf && echo etc/pve/virtual-guest/cpu-models.conf)"
)
#: Bounds on what we accept from the archive (a config is a few KiB).
MAX_MEMBER_BYTES = 1024 * 1024
MAX_MEMBERS = 200_000
_CONF = re.compile(r"etc/pve/nodes/([^/]+)/qemu-server/([1-9][0-9]{2,8})\.conf", re.ASCII)
CPU_MODELS = "etc/pve/virtual-guest/cpu-models.conf"


@dataclass
class ClusterFiles:
    """What the archive held: configs by VMID (node set), custom CPU models text, problems."""

    configs: dict[int, VmConfig] = field(default_factory=dict)
    cpu_models: str | None = None
    problems: list[str] = field(default_factory=list)


def read_archive(stream: IO[bytes]) -> ClusterFiles:
    """Parse a tar stream of /etc/pve (relative paths), refusing anything but small files."""
    out = ClusterFiles()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for count, member in enumerate(archive):
                if count >= MAX_MEMBERS:
                    out.problems.append(f"more than {MAX_MEMBERS} entries: the rest ignored")
                    break
                _member(archive, member, out)
    except (tarfile.TarError, OSError, EOFError) as exc:
        out.problems.append(f"the archive of /etc/pve could not be read: {exc}")
    return out


def _member(archive: tarfile.TarFile, member: tarfile.TarInfo, out: ClusterFiles) -> None:
    name = member.name.removeprefix("./")
    if not member.isfile():
        return
    conf = _CONF.fullmatch(name)
    if conf is None and name != CPU_MODELS:
        return
    if member.size > MAX_MEMBER_BYTES:
        out.problems.append(f"/{name}: larger than {MAX_MEMBER_BYTES} bytes, not read")
        return
    handle = archive.extractfile(member)
    if handle is None:
        return
    text = handle.read(MAX_MEMBER_BYTES).decode("utf-8", errors="surrogateescape")
    if conf is None:
        out.cpu_models = text
        return
    node, vmid = conf.group(1), int(conf.group(2))
    cfg = parse_vm_config(text, vmid, "/" + name)
    cfg.node = node
    if vmid in out.configs:
        out.problems.append(f"VM {vmid}: configs on two nodes ({out.configs[vmid].node}, {node})")
        return
    out.configs[vmid] = cfg


def fetch_cluster_files(
    host: str, *, user: str = "root", timeout: float = 60.0, runner: Runner | None = None
) -> ClusterFiles:
    """The cluster's configs from one node over SSH (BatchMode: never a password prompt)."""
    where = f"{user}@{host}"
    try:
        proc = SshMachine(where, runner=runner).spawn(
            ["sh", "-c", REMOTE_TAR], stdout=PIPE, stderr=PIPE
        )
    except FileNotFoundError:
        return ClusterFiles(problems=["--ssh: no ssh client on this machine"])
    except OSError as exc:
        return ClusterFiles(problems=[f"--ssh {where}: cannot start ssh: {exc.strerror or exc}"])
    assert proc.stdout is not None
    files = read_archive(proc.stdout)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except TimeoutExpired:
        proc.kill()
        proc.communicate()
        files.problems.append(f"--ssh {where}: no answer within {timeout:g} s")
        return files
    if proc.returncode not in (0, 1) or (not files.configs and proc.returncode):
        text = " ".join(err.decode("utf-8", "replace").split())[:200]
        files.problems.append(f"--ssh {where}: {text or f'exit {proc.returncode}'}")
    return files
