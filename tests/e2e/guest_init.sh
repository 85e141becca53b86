#!/bin/sh
# /init of the tiny end-to-end test guest (busybox). Prints @@ markers on the serial console that
# the tests compare with what nestctl reads through the guest agent.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp
# Dependency order: the virtio transport and console, then kvm (needs irqbypass).
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
         virtio_console irqbypass kvm; do
    insmod /mods/$m.ko || echo "@@INSMOD-FAILED $m"
done
# Load the vendor module whose flag the vCPU shows: /dev/kvm then says whether a nested guest could
# really run here (kvm64,+svm shows svm on a GenuineIntel vCPU, and kvm-amd refuses to load).
grep -qw svm /proc/cpuinfo && insmod /mods/kvm-amd.ko 2>/dev/null
grep -qw vmx /proc/cpuinfo && insmod /mods/kvm-intel.ko 2>/dev/null
echo "@@VENDOR $(grep -m1 '^vendor_id' /proc/cpuinfo | sed 's/.*: *//')"
echo "@@FLAGS $(grep -m1 '^flags' /proc/cpuinfo | sed 's/.*: *//')"
if [ -e /dev/kvm ]; then echo "@@DEVKVM yes"; else echo "@@DEVKVM no"; fi
# No udev: find the agent's port by its name.
QGA=
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && QGA=/dev/$(basename "$p")
done
echo "@@QGA ${QGA:-none}"
# Guest variants, chosen on the kernel command line (tests/e2e/guest_vm.py VARIANTS):
# nestctl.no_test: a guest without the `test` and `[` programs (the shell's builtins remain);
# nestctl.block_exec: an agent that refuses guest-exec, as some distributions configure it.
QGA_ARGS=
for word in $(cat /proc/cmdline); do
    case "$word" in
        nestctl.no_test) /bin/busybox rm -f /bin/test "/bin/[" && echo "@@VARIANT no-test" ;;
        nestctl.block_exec) QGA_ARGS="-b guest-exec" && echo "@@VARIANT block-exec" ;;
    esac
done
if [ -n "$QGA" ]; then
    /bin/qemu-ga -m virtio-serial -p "$QGA" -t /run $QGA_ARGS &
fi
echo "@@READY"
# Stay up until the test kills QEMU; power off on our own after a generous limit.
sleep 900
poweroff -f
