"""Boot the lab's L1 hosts under QEMU's software emulation (never KVM at L0) and talk to them.

Every L1 is `-accel tcg -cpu EPYC...`: TCG emulates AMD SVM, so L1 loads kvm_amd, has /dev/kvm
and runs its L2 guests under real KVM (`../shared/reference/qemu-e2e.md`, "A real nested stack").
Commands inside L1 (and, through nestctl there, inside L2) run through L1's guest agent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from nestctl.guest.agent import ExecResult, GuestAgent, GuestAgentError
from tests.e2e.guest_vm import APPEND, TcgGuest, boot, wait_all
from tests.lab.image import LabImage

#: Generous: three L1s boot at once on 2 cores shared with other test runs.
BOOT_TIMEOUT = 300.0
L2_TIMEOUT = 240.0
NESTCTL = "/usr/local/bin/nestctl"


class LabError(Exception):
    """The lab did not come up, or a command inside it could not run; the message says why."""


@dataclass(frozen=True)
class L1Spec:
    vmid: int  # its VMID in the L0 root
    cpu: str
    nested: int = 1  # what L1's /etc/modprobe.d says for kvm_amd
    l2: tuple[int, ...] = ()
    memory: int = 1536


@dataclass
class L1(TcgGuest):
    spec: L1Spec = field(kw_only=True)
    l2_agent_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def ready_seconds(self) -> float | None:
        return self.boot_seconds

    def agent(self, timeout: float = 30.0) -> GuestAgent:
        return GuestAgent(self.qga_socket, timeout=timeout)

    def run(self, argv: list[str], timeout: float = 180.0) -> ExecResult:
        """Run a program in L1 through its guest agent (guest-exec)."""
        try:
            with self.agent() as agent:
                res = agent.exec(argv[0], argv[1:], timeout)
        except GuestAgentError as exc:
            raise LabError(f"L1 {self.spec.vmid}: {' '.join(argv)}: {exc}") from exc
        if res.timed_out:
            raise LabError(f"L1 {self.spec.vmid}: {' '.join(argv)} still running after {timeout}s")
        return res

    def nestctl(self, *args: str, timeout: float = 240.0) -> tuple[int | None, Any]:
        """`nestctl ARGS --json` inside L1: (exit code, parsed JSON)."""
        res = self.run([NESTCTL, *args, "--json"], timeout)
        try:
            return res.exitcode, json.loads(res.stdout)
        except ValueError as exc:
            raise LabError(
                f"nestctl {' '.join(args)} in L1 {self.spec.vmid} (exit {res.exitcode}) gave no "
                f"JSON: {res.stdout[-400:]!r} {res.stderr[-800:]!r}"
            ) from exc

    def sh(self, script: str, timeout: float = 60.0) -> str:
        res = self.run(["/bin/sh", "-c", script], timeout)
        if res.exitcode != 0:
            err = res.stderr.decode(errors="replace")
            raise LabError(f"L1 {self.spec.vmid}: sh -c {script!r}: exit {res.exitcode}: {err}")
        return res.stdout.decode(errors="replace")

    def read(self, path: str) -> bytes:
        try:
            with self.agent() as agent:
                return agent.read_file(path)
        except GuestAgentError as exc:
            raise LabError(f"L1 {self.spec.vmid}: read {path}: {exc}") from exc


def start_l1(image: LabImage, spec: L1Spec) -> L1:
    words = [APPEND, f"nestctl.lab.nested={spec.nested}"]
    if spec.l2:
        words.append("nestctl.lab.l2=" + ",".join(map(str, spec.l2)))
    workdir, proc, argv = boot(
        kernel=image.kernel,
        initrd=image.initrd,
        append=" ".join(words),
        cpu=spec.cpu,
        memory=spec.memory,
        prefix="nestctl-lab-",
        extra=("-name", f"lab-l1-{spec.vmid}"),
    )
    return L1(workdir, proc, argv, time.monotonic(), spec=spec)


def _ready(l1: L1) -> bool:
    """@@READY printed (its L2 QEMUs started) and its agent answers; a -FAILED marker fails."""
    ready = l1.poll_markers()
    failed = [k for k in l1.markers if k.endswith("-FAILED")]
    if failed:
        raise LabError(f"L1 {l1.spec.vmid}: {failed[0]} {l1.markers[failed[0]]}")
    if not ready:
        return False
    try:
        with l1.agent(timeout=2.0) as agent:
            agent.ping()
    except GuestAgentError:
        return False
    return True


def wait_ready(l1s: list[L1], timeout: float = BOOT_TIMEOUT) -> None:
    """Until each L1 printed @@READY (its L2 QEMUs started) and its agent answers."""
    wait_all(l1s, timeout, ready=_ready, fail=LabError, name=_l1_name, every=0.5)


def _l1_name(l1: L1) -> str:
    return f"L1 {l1.spec.vmid} (-cpu {l1.spec.cpu})"


def wait_l2_agents(l1: L1, timeout: float = L2_TIMEOUT) -> None:
    """Until every L2 of `l1` answers its own agent, asked from inside L1 (nestctl's probe)."""
    deadline = time.monotonic() + timeout
    for vmid in l1.spec.l2:
        while True:
            # `nestctl vm VMID --guest` inside L1 reaches L2's agent: "via": "agent" when it did.
            code, body = l1.nestctl("vm", str(vmid), "--guest", "--no-qemu", timeout=120.0)
            vm = (body.get("vms") or [{}])[0]
            if isinstance(vm.get("guest"), dict) and vm["guest"].get("via") == "agent":
                l1.l2_agent_seconds[vmid] = time.monotonic() - l1.started
                break
            if time.monotonic() > deadline:
                raise LabError(f"L2 {vmid} in L1 {l1.spec.vmid}: agent silent (exit {code})")
            time.sleep(2.0)
