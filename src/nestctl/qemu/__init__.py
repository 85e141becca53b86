"""Talking to real QEMU: QMP questions about what a -cpu value yields, without booting a guest."""
