#!/bin/sh
# /init of the lab's L1: a small real KVM host laid out like a Proxmox node where nestctl reads it.
# Kernel command line words (tests/lab/stack.py):
#   nestctl.lab.nested=0|1   what /etc/modprobe.d/kvm-amd.conf says (modprobe applies it; default 1)
#   nestctl.lab.l2=201,202   the L2 VMs to start (their configs go to /etc/pve/qemu-server)
# Prints @@ markers on the serial console; @@READY once the L2 QEMUs were started.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp /var/tmp /var/log/qemu-server /etc/modprobe.d
ln -s /run /var/run
NODE=l1lab
echo "$NODE" > /etc/hostname
hostname "$NODE"
NESTED=1
L2S=
for word in $(cat /proc/cmdline); do
    case "$word" in
        nestctl.lab.nested=*) NESTED=${word#*=} ;;
        nestctl.lab.l2=*) L2S=$(echo "${word#*=}" | tr , ' ') ;;
    esac
done
# Modules where modprobe finds them, as on an installed system (busybox depmod).
KMOD=/lib/modules/$(uname -r)/kernel
mkdir -p "$KMOD"
cp /mods/*.ko "$KMOD/"
depmod
for m in virtio_pci virtio_console kvm; do modprobe $m || echo "@@MODPROBE-FAILED $m"; done
# The admin's setting, applied by modprobe as at boot on a real host.
echo "options kvm_amd nested=$NESTED" > /etc/modprobe.d/kvm-amd.conf
grep -qw svm /proc/cpuinfo && modprobe kvm_amd
echo "@@VENDOR $(grep -m1 '^vendor_id' /proc/cpuinfo | sed 's/.*: *//')"
echo "@@FLAGS $(grep -m1 '^flags' /proc/cpuinfo | sed 's/.*: *//')"
if [ -e /dev/kvm ]; then echo "@@DEVKVM yes"; else echo "@@DEVKVM no"; fi
echo "@@NESTED $(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null || echo none)"
QGA=
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && QGA=/dev/$(basename "$p")
done
[ -n "$QGA" ] && /bin/qemu-ga -m virtio-serial -p "$QGA" -t /run &
# pmxcfs' layout: the node's folder, and the qemu-server / local links into it.
mkdir -p /etc/pve/nodes/$NODE/qemu-server
ln -s nodes/$NODE/qemu-server /etc/pve/qemu-server
ln -s nodes/$NODE /etc/pve/local
mkdir -p /var/run/qemu-server
if [ -e /dev/kvm ]; then
    for vmid in $L2S; do
        # `cpu: host`, started with the -cpu Proxmox builds for it.
        lab-start-l2 "$vmid" host -- host,+kvm_pv_eoi,+kvm_pv_unhalt \
            2> /var/log/qemu-server/$vmid.err || echo "@@L2-FAILED $vmid $(cat /var/log/qemu-server/$vmid.err)"
        echo "@@L2 $vmid $(cat /var/run/qemu-server/$vmid.pid 2>/dev/null)"
    done
fi
echo "@@READY"
sleep 3600
poweroff -f
