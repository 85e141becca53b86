#!/bin/sh
# lab-start-l2 VMID CPU -- QEMU_CPU: write /etc/pve/qemu-server/VMID.conf with `cpu: CPU` and start
# the VM as Proxmox would (QEMU_CPU: the -cpu Proxmox builds for it; pid file, agent socket).
# Installed in the lab's L1 as /usr/local/sbin/lab-start-l2.
set -e
vmid=$1 cpu=$2 qemu_cpu=$4
# tags: nested: the lab's L2s are meant to nest (an L3 could run in them), so they are judged.
printf 'agent: 1\ncores: 1\ncpu: %s\nmemory: 256\nname: l2-%s\nostype: l26\ntags: nested\n' "$cpu" "$vmid" \
    > /etc/pve/qemu-server/$vmid.conf
qemu-system-x86_64 -name "l2-$vmid" -machine pc,accel=kvm -enable-kvm \
    -cpu "$qemu_cpu" -m 256 -smp 1 -nodefaults -display none \
    -no-reboot -serial file:/var/log/qemu-server/$vmid.serial \
    -kernel /l2/vmlinuz -initrd /l2/initrd.gz \
    -append "console=ttyS0 quiet panic=-1 noxsave no5lvl no_timer_check" \
    -device virtio-serial \
    -chardev socket,id=qga0,path=/var/run/qemu-server/$vmid.qga,server=on,wait=off \
    -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
    -pidfile /var/run/qemu-server/$vmid.pid -daemonize
