"""The running QEMU's environment is shared per (node, QEMU), so the -cpu prediction of many VMs
on one node is computed once, and stays the prediction for the QEMU each VM runs."""

from __future__ import annotations

from nestctl.vm.collect.api import env_with_qemu
from nestctl.vm.cpuarg import predict_cpu
from nestctl.vm.model import CpuEnv


def test_one_env_per_node_and_qemu() -> None:
    node = CpuEnv(qemu_version=(11, 0, 0), nodename="pve1")
    other = CpuEnv(qemu_version=(11, 0, 0), nodename="pve2")
    old = env_with_qemu(node, (7, 2, 0))
    assert old.qemu_version == (7, 2, 0)
    assert old.nodename == "pve1"
    assert env_with_qemu(node, (7, 2, 0)) is old
    assert env_with_qemu(node, (11, 0, 0)) is node
    assert env_with_qemu(other, (7, 2, 0)) is not old
    assert env_with_qemu(other, (7, 2, 0)).nodename == "pve2"


def test_the_prediction_follows_the_running_qemu() -> None:
    node = CpuEnv(qemu_version=(11, 0, 0))
    conf = {"ostype": "win11", "machine": "pc-q35-8.1"}
    old = predict_cpu(conf, env_with_qemu(node, (7, 2, 0)))
    assert old == predict_cpu(conf, CpuEnv(qemu_version=(7, 2, 0)))
    assert predict_cpu(conf, env_with_qemu(node, (7, 2, 0))) is old  # the cache served it
