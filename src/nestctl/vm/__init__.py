"""The VM layer: Proxmox configs read as Proxmox does, the -cpu it builds, what the guest gets."""
