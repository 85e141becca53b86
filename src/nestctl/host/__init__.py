"""The physical host layer: CPU, KVM module, `nested` now and after reboot, VMs in the way."""
