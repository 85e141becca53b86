"""`nestctl guest`: run inside a guest; can it host VMs of its own? (kvm-ok style)

Exit codes: 0 usable, 1 not usable, 2 could not check.
"""

from __future__ import annotations

import click

from nestctl.cli.common import finish, json_option, open_host, root_option


@click.command(epilog="Exit codes: 0 usable, 1 not usable, 2 could not check.")
@root_option
@json_option
@click.option(
    "--os",
    "os_name",
    type=click.Choice(["linux", "windows"]),
    default=None,
    help="Probe as this OS (default: the OS nestctl runs on).",
)
@click.option(
    "--try-wsl",
    is_flag=True,
    help="Windows: start the default WSL distribution once to see WSL2's real error code.",
)
def guest(root: str, as_json: bool, os_name: str | None, try_wsl: bool) -> None:
    """Check from inside this guest whether it can run accelerated VMs.

    Linux: vmx/svm, /dev/kvm and its permissions, the kvm module, KVM vs TCG, nesting level and
    lab readiness. Windows: Hyper-V, WSL2 and Docker Desktop verdicts from features, bcdedit,
    services, hypervisor events and WSL's error codes.
    """
    from nestctl.guest.report import guest_report  # noqa: PLC0415 - keep start-up fast

    host = open_host(root)
    finish(guest_report(host, os=os_name, try_wsl=try_wsl), as_json)
