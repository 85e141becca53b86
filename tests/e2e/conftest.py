"""Fixtures for the end-to-end tests: real QEMU under TCG (never KVM), a real guest agent.

* `guest_image` (session): the cached tiny guest (`guest_image.py`); skips with the reason when it
  cannot be built here (no QEMU, no busybox-static, no network for apt-get download).
* `booted_guests` (session): one guest per -cpu in `E2E_CPUS`, all booted at once at the start
  (they share 2 cores; concurrency halves the wall time), killed at the end.
* `booted` (parametrized over `E2E_CPUS`): one of those guests; a test using it runs once per -cpu.
* `variant_guests` (session): one guest per entry of `guest_vm.VARIANTS` (an agent refusing
  guest-exec, a guest without `test`), booted in the same batch, with -cpu `VARIANT_CPU`.
* `pve_guest_root`: a fake Proxmox root (`pve_root.make_pve_root`) whose VM 100 is `booted`, for
  `nestctl vm 100 --guest --root <root>` tests.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.guest_image import GuestImage, GuestUnavailableError, build_guest
from tests.e2e.guest_vm import VARIANTS, BootedGuest, BootFailedError, start_guest, wait_ready
from tests.e2e.pve_root import make_pve_root
from tests.e2e.required import _private_oracle_cache, give_up, qemu_binary

__all__ = ["_private_oracle_cache", "qemu_binary"]


@dataclass(frozen=True)
class Expected:
    """What the guest sees with this -cpu under TCG (qemu-e2e reference table, QEMU 7.2)."""

    svm: bool
    vmx: bool
    vendor: str
    dev_kvm: bool


E2E_CPUS: dict[str, Expected] = {
    "qemu64": Expected(svm=True, vmx=False, vendor="AuthenticAMD", dev_kvm=True),
    "kvm64": Expected(svm=False, vmx=False, vendor="GenuineIntel", dev_kvm=False),
    # svm switched off explicitly on a model that has it (needs no5lvl on the kernel command line).
    "max,-svm": Expected(svm=False, vmx=False, vendor="AuthenticAMD", dev_kvm=False),
    # The flag is visible but /dev/kvm cannot appear: an Intel vendor string with svm.
    "kvm64,+svm": Expected(svm=True, vmx=False, vendor="GenuineIntel", dev_kvm=False),
}

PVE_VMID = 100
#: The variants run with svm and a real /dev/kvm: nestctl must say "unknown", never "absent".
VARIANT_CPU = "qemu64"


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    # CI sets NESTCTL_E2E_REQUIRED: there a guest that cannot be built is a failure, not a skip.
    if not shutil.which("qemu-system-x86_64"):
        give_up("qemu-system-x86_64 not installed (scripts/install-debian-deps)")
    try:
        return build_guest()
    except GuestUnavailableError as exc:
        give_up(f"cannot build the e2e guest: {exc}")
        raise  # unreachable: give_up raises


@pytest.fixture(scope="session")
def all_guests(guest_image: GuestImage) -> Iterator[dict[str, BootedGuest]]:
    """Every e2e guest, booted at once: the -cpu set (keyed by -cpu) and the variants (by name)."""
    guests: dict[str, BootedGuest] = {}
    try:
        for cpu in E2E_CPUS:
            guests[cpu] = start_guest(guest_image, cpu)
        for variant in VARIANTS:
            guests[variant] = start_guest(guest_image, VARIANT_CPU, variant)
        try:
            wait_ready(list(guests.values()))
        except BootFailedError as exc:
            pytest.fail(str(exc))
        yield guests
    finally:
        for g in guests.values():
            g.stop()


@pytest.fixture(scope="session")
def booted_guests(all_guests: dict[str, BootedGuest]) -> dict[str, BootedGuest]:
    return {cpu: all_guests[cpu] for cpu in E2E_CPUS}


@pytest.fixture(scope="session")
def variant_guests(all_guests: dict[str, BootedGuest]) -> dict[str, BootedGuest]:
    return {name: all_guests[name] for name in VARIANTS}


@pytest.fixture(params=list(E2E_CPUS))
def booted(request: pytest.FixtureRequest, booted_guests: dict[str, BootedGuest]) -> BootedGuest:
    return booted_guests[str(request.param)]


@pytest.fixture
def pve_guest_root(tmp_path: Path, booted: BootedGuest) -> Path:
    """A fake Proxmox root whose VM `PVE_VMID` runs with the booted guest's -cpu and agent."""
    return make_pve_root(tmp_path, PVE_VMID, booted.cpu, booted.qga_socket, pid=booted.pid)
