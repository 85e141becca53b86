"""The local collector: this node's VM configs, QEMU processes and host facts, through `Host`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nestctl.findings import Finding, unknown
from nestctl.host.pidfiles import scan_pidfiles
from nestctl.machine import Host
from nestctl.vm.facts import NodeFacts, ScanFacts, VmFacts, VmOptions
from nestctl.vm.running import RunningCheck, running_check

if TYPE_CHECKING:
    from nestctl.host.probe import HostFacts


def node_facts(host: Host, opts: VmOptions, host_facts: HostFacts | None = None) -> NodeFacts:
    """The node's facts: probed here unless the caller (doctor) already has them."""
    from nestctl.host.probe import probe_host  # noqa: PLC0415 - keep start-up lean
    from nestctl.vm import versions  # noqa: PLC0415

    facts = host_facts if host_facts is not None else probe_host(host)
    qemu = versions.parse_version_arg(opts.qemu_version) if opts.qemu_version else None
    pve = versions.parse_version_arg(opts.pve_version) if opts.pve_version else None
    env, got, problems = versions.cpu_env_from_host(host, qemu_version=qemu, pve_version=pve)
    cpuinfo = facts.cpuinfo
    return NodeFacts(
        name=env.nodename,
        env=env,
        cpuinfo_known=cpuinfo is not None,
        vendor=facts.vendor,
        flags=cpuinfo.flags if cpuinfo else frozenset(),
        nested_live=facts.nested_live,
        env_problems=tuple(problems),
        qemu_version_known=qemu is not None or got.pve_qemu_kvm is not None,
        qemu_server_known=pve is not None or got.qemu_server is not None,
        level={"L0": 0, "L1+": 1}.get(facts.level or ""),
    )


def collect_vms(host: Host, opts: VmOptions, scan: ScanFacts) -> None:
    """Add the VMs asked (default: every VM on this node) to `scan`, with what could not be read."""
    from nestctl.vm.config import config_access_problem, load_vm_configs, local_node  # noqa: PLC0415

    if not host.is_dir("/etc/pve"):
        scan.findings.append(
            unknown(
                "vm.no-proxmox",
                f"no /etc/pve under {host.root}: not a Proxmox VE node (or pmxcfs is not "
                f"mounted), so there are no VM configs to check",
                "systemctl status pve-cluster",
            )
        )
    elif (pve := host.listdir("/etc/pve")).ok and not pve.names:
        # pmxcfs not mounted: the mount point is an empty directory. "0 VMs" would be a lie.
        scan.findings.append(
            unknown(
                "vm.pmxcfs.not-mounted",
                f"/etc/pve under {host.root} is empty: the Proxmox cluster file system (pmxcfs) "
                f"is not mounted, so this node's VMs cannot be listed",
                "systemctl status pve-cluster",
            )
        )
    elif (problem := config_access_problem(host)) is not None:
        scan.findings.append(
            unknown(
                "vm.configs.unreadable",
                f"this node's VM configs cannot be listed: {problem}",
                "run as root (pmxcfs serves VM configs to root and www-data only)",
            )
        )
    configs = load_vm_configs(
        host, all_nodes=opts.all_nodes, vmids=list(opts.vmids) if opts.vmids else None
    )
    here = local_node(host)
    pids = scan_pidfiles(host)
    for cfg in configs:
        if not cfg.readable:
            if host.exists(cfg.path).present is False:
                scan.config_findings.append(_not_found(host, cfg.vmid, all_nodes=opts.all_nodes))
            else:
                # It exists (or we cannot tell): "not found" would send the admin looking for
                # a VM that is there.
                scan.config_findings.append(
                    unknown(
                        "vm.config.unreadable",
                        f"VM {cfg.vmid}: could not check: " + "; ".join(cfg.problems),
                        "run as root (pmxcfs serves VM configs to root and www-data only)",
                    )
                )
            continue
        if cfg.node not in (None, here):
            run = RunningCheck(False, reason="on another node")
        else:
            run = running_check(pids.check(cfg.vmid))
        scan.vms.append(VmFacts(cfg, run))


def collect_local(host: Host, opts: VmOptions, host_facts: HostFacts | None = None) -> ScanFacts:
    scan = ScanFacts()
    collect_vms(host, opts, scan)
    node = node_facts(host, opts, host_facts)
    scan.nodes[None] = node
    return scan


def _not_found(host: Host, vmid: int, *, all_nodes: bool) -> Finding:
    """No config for `vmid` here: on another node (then --all-nodes finds it), or nowhere in
    the cluster file system (with the VMIDs the user may have meant)."""
    from nestctl.vm.config import NODES_DIR, QEMU_SERVER_DIR, _dir_vmids  # noqa: PLC0415
    from nestctl.vm.notfound import not_found  # noqa: PLC0415

    where: dict[int, str] = {}
    for name in host.listdir(NODES_DIR).names:
        for each in _dir_vmids(host, f"{NODES_DIR}/{name}/qemu-server"):
            where.setdefault(each, name)
    known = set(where) | set(_dir_vmids(host, QEMU_SERVER_DIR))
    if vmid in where and not all_nodes:
        return not_found(
            vmid,
            (),
            where=f"on this node (it is on node {where[vmid]})",
            fix=f"nestctl vm {vmid} --all-nodes (or run nestctl on {where[vmid]})",
        )
    return not_found(vmid, known)
