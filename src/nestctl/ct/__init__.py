"""Containers (LXC) on Proxmox VE: their configs, what nested workloads they can run, the fix."""
