"""nestctl: make nested virtualization on Proxmox VE and KVM hosts work, and prove it."""

__version__ = "0.1.0"
