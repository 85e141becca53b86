"""Collectors: each gathers `vm.facts.ScanFacts` from one source, for the one analysis.

- `local.py`: this node's files (/etc/pve, QEMU's pid files, /proc) through `Host`.
- `pmxcfs.py`: the whole cluster's configs from the cluster file system, over one SSH connection.
- `api.py`: the Proxmox API, every node and VM, concurrently.
"""
