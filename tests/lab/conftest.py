"""Fixtures of the lab: L0 (TCG) -> L1 real KVM hosts -> L2 guests under L1's KVM.

* `lab_image` (session): the cached L1 image (`image.py`); a lab that cannot be built skips on a
  developer's machine and FAILS in CI (NESTCTL_E2E_REQUIRED=1, set by scripts/test when CI=true).
* `lab` (session): three L1s booted at once: `main` (EPYC, nested=1, L2 VMs 201 and 202),
  `nested_off` (EPYC, kvm_amd nested=0 by /etc/modprobe.d, L2 VM 201), `no_svm`
  (`-cpu EPYC,-svm`, no KVM, no L2); the L2 agents are awaited from inside L1 (nestctl's own
  probe). Stopped at the end.
* `l0_root`: a Proxmox-node root for `--root` whose VMs 101-103 are those three L1 QEMUs.
* `artifacts`: where result files are kept (`$NESTCTL_LAB_ARTIFACTS`, default
  tests/lab/artifacts, gitignored).

Every test here is marked `e2e` and `lab` (`-m lab` runs just the lab).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.guest_image import GuestUnavailableError
from tests.e2e.required import _private_oracle_cache, give_up
from tests.lab.image import LabImage, build_lab
from tests.lab.l0_root import make_l0_root
from tests.lab.stack import L1, L1Spec, LabError, start_l1, wait_l2_agents, wait_ready

__all__ = ["_private_oracle_cache"]

HERE = Path(__file__).resolve().parent
MAIN = L1Spec(101, "EPYC", nested=1, l2=(201, 202), memory=2048)
NESTED_OFF = L1Spec(102, "EPYC", nested=0, l2=(201,), memory=1536)
NO_SVM = L1Spec(103, "EPYC,-svm", nested=1, memory=1024)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.lab)


@dataclass
class Lab:
    main: L1
    nested_off: L1
    no_svm: L1
    started: float

    @property
    def all(self) -> list[L1]:
        return [self.main, self.nested_off, self.no_svm]

    def quiet(self) -> None:
        """Stop the broken-link L1s: the benchmark shares 2 cores with them otherwise."""
        self.nested_off.stop()
        self.no_svm.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("NESTCTL_LAB_ARTIFACTS") or HERE / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def lab_image() -> LabImage:
    if not shutil.which("qemu-system-x86_64"):
        give_up("qemu-system-x86_64 not installed (scripts/install-debian-deps)")
    try:
        return build_lab()
    except GuestUnavailableError as exc:
        give_up(f"cannot build the lab's L1 image: {exc}")
        raise  # unreachable: give_up raises


@pytest.fixture(scope="session")
def lab(lab_image: LabImage, artifacts: Path) -> Iterator[Lab]:
    started = time.monotonic()
    l1s: list[L1] = []
    try:
        l1s = [start_l1(lab_image, spec) for spec in (MAIN, NESTED_OFF, NO_SVM)]
        try:
            wait_ready(l1s)
            for l1 in l1s[:2]:
                wait_l2_agents(l1)
        except LabError as exc:
            tails = {l1.spec.vmid: l1.console.read_text(errors="replace")[-1500:] for l1 in l1s}
            pytest.fail(f"{exc}; consoles: {tails}")
        timings = {
            "image_seconds": round(lab_image.seconds, 1),
            "image_built": lab_image.built,
            "l1_ready_seconds": {l1.spec.vmid: round(l1.ready_seconds or 0, 1) for l1 in l1s},
            "l2_agent_seconds_after_l1_start": {
                l1.spec.vmid: {k: round(v, 1) for k, v in l1.l2_agent_seconds.items()}
                for l1 in l1s[:2]
            },
            "lab_up_seconds": round(time.monotonic() - started, 1),
            "loadavg": os.getloadavg(),
        }
        (artifacts / "boot-times.json").write_text(json.dumps(timings, indent=2) + "\n")
        yield Lab(*l1s, started=started)
    finally:
        for l1 in l1s:
            l1.stop()


@pytest.fixture(scope="session")
def l0_root(tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Path:
    return make_l0_root(tmp_path_factory.mktemp("lab-l0"), lab.all)
