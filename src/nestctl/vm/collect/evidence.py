"""Each node's KVM `nested` parameter without SSH: evidence the user already has, each source
named in `decided_by` (the Proxmox API itself does not expose the parameter).

In order of trust:

* ``--ssh``: read on the node as root (live; `vm/collect/ssh.py`);
* ``--prometheus URL``: the ``nestctl_host_nested_enabled{id="node/<name>"}`` series that
  nestctl's exporter or textfile on the node feeds, if its run is recent (``MAX_AGE_S``);
  Prometheus already joins many nodes, so nestctl asks it rather than collecting itself;
* a running KVM guest that sees vmx/svm (read through its agent, `--guest`): nested is on for
  its node now (only ever a "yes": a guest without the flag may simply have a `-cpu` without it);
* qemu-server >= 9.1.17's CPU-flag listing (``cpu-flags?accel=kvm``): ``nested-virt``'s
  ``supported-on`` names the nodes whose KVM offered vmx/svm when pvestatd last probed (at its
  start or a QEMU update): dated evidence, never the live value (a module reload since then is
  not seen). See ../shared/reference/pve-api-facts.md.

Where none applies the node stays unknown and the message names what the user can turn on
(`UNKNOWN_WHY`): no command is offered there, since none can be run from a phone.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nestctl.vm.collect.nested import NestedReader, NestedReading

if TYPE_CHECKING:
    from nestctl.vm.analyse import VmResult

#: A nestctl run older than this (its last success) is stale: the textfile timer runs every
#: minute, so fifteen missed runs mean it stopped.
MAX_AGE_S = 900.0
SERIES = "nestctl_host_nested_enabled"
LAST_SUCCESS = "nestctl_last_success_timestamp_seconds"

UNKNOWN_WHY = (
    "the Proxmox API does not show the kvm module's nested parameter; any of these tells it: "
    "a Prometheus that scrapes nestctl on the nodes (--prometheus URL, or prometheus = in the "
    "target's config), a running VM with cpu: host whose guest agent nestctl may ask (--guest), "
    "qemu-server 9.1.17 or later on the node (its CPU-flag listing), or --ssh"
)


def chain_readers(readers: Iterable[NestedReader]) -> NestedReader | None:
    """The first reader that knows a node's value answers; else the last one's reason."""
    chain = list(readers)
    if not chain:
        return None
    if len(chain) == 1:
        return chain[0]

    def read(node: str, address: str | None) -> NestedReading:
        reasons = []
        for each in chain:
            got = each(node, address)
            if got.live is not None:
                return got
            reasons.append(got.problem or "not read")
        return NestedReading(None, problem="; ".join(reasons))

    return read


# -- Prometheus ----------------------------------------------------------------------------


class PrometheusError(Exception):
    """Prometheus could not be asked (one plain sentence)."""


def _query(url: str, expr: str, timeout: float) -> list[dict[str, Any]]:
    import urllib.error  # noqa: PLC0415
    import urllib.parse  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    # No proxy from the environment: nestctl's HTTP never follows one it was not given.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    full = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with opener.open(full, timeout=timeout) as resp:
            body = json.loads(resp.read(4 * 1024 * 1024 + 1))
    except urllib.error.HTTPError as exc:
        raise PrometheusError(f"Prometheus at {url} answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise PrometheusError(f"Prometheus at {url} could not be asked ({reason})") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(data, dict):
        raise PrometheusError(f"Prometheus at {url} did not answer a query")
    result = data.get("result")
    return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []


def _sample(row: Mapping[str, Any]) -> float | None:
    value = row.get("value")
    if not isinstance(value, list) or len(value) != 2:
        return None
    try:
        return float(value[1])
    except (TypeError, ValueError):
        return None


def prometheus_readings(
    url: str, *, now: float | None = None, timeout: float = 10.0, max_age: float = MAX_AGE_S
) -> dict[str, NestedReading]:
    """Node name -> reading, for every node Prometheus has a recent sample of (two queries for
    the whole cluster). A node with only a stale sample gets a reading that says so."""
    now = time.time() if now is None else now
    series = _query(url, SERIES, timeout)
    runs = {
        (str(r.get("metric", {}).get("instance")), str(r.get("metric", {}).get("job"))): _sample(r)
        for r in _query(url, LAST_SUCCESS, timeout)
        if isinstance(r.get("metric"), dict)
    }
    best: dict[str, tuple[float, NestedReading]] = {}
    for row in series:
        metric = row.get("metric")
        value = _sample(row)
        if not isinstance(metric, dict) or value not in (0.0, 1.0):
            continue
        nid = str(metric.get("id", ""))
        if not nid.startswith("node/"):
            continue
        name = nid.removeprefix("node/")
        where = f"{metric.get('instance')}/{metric.get('job')}"
        last = runs.get((str(metric.get("instance")), str(metric.get("job"))))
        if last is None:
            reading = NestedReading(
                None, problem=f"Prometheus has {SERIES} for {name} but no {LAST_SUCCESS} ({where})"
            )
            age = float("inf")
        else:
            age = max(0.0, now - last)
            if age > max_age:
                reading = NestedReading(
                    None,
                    problem=f"Prometheus's sample for {name} is stale: nestctl last succeeded "
                    f"{_ago(age)} ago ({where})",
                )
            else:
                reading = NestedReading(
                    value == 1.0,
                    decided_by=f"prometheus {url}: {SERIES} from {where}, {_ago(age)} old",
                )
        if name not in best or age < best[name][0]:
            best[name] = (age, reading)
    return {name: reading for name, (_age, reading) in best.items()}


def prometheus_reader(url: str, *, timeout: float = 10.0) -> NestedReader:
    """A `NestedReader` asking Prometheus once (lazily, for every node) and answering each node
    from that one answer."""
    lock = threading.Lock()
    cache: dict[str, Any] = {}

    def read(node: str, _address: str | None) -> NestedReading:
        with lock:
            if "readings" not in cache:
                try:
                    cache["readings"] = prometheus_readings(url, timeout=timeout)
                except PrometheusError as exc:
                    cache["readings"], cache["error"] = {}, str(exc)
        if "error" in cache:
            return NestedReading(None, problem=str(cache["error"]))
        got: NestedReading | None = cache["readings"].get(node)
        if got is None:
            return NestedReading(
                None, problem=f"Prometheus at {url} has no {SERIES} for node {node}"
            )
        return got

    return read


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


# -- qemu-server's CPU-flag listing --------------------------------------------------------


def cpu_flags_reading(flags: object, node: str, uptime: float | None) -> NestedReading | None:
    """What `nested-virt`'s `supported-on` says of `node` (qemu-server >= 9.1.17), or None when
    the listing has no `supported-on` (older servers list names only)."""
    if not isinstance(flags, list):
        return None
    entry = next((f for f in flags if isinstance(f, dict) and f.get("name") == "nested-virt"), None)
    if entry is None or not isinstance(entry.get("supported-on"), list):
        return None
    on = node in {str(n) for n in entry["supported-on"]}
    since = f"; the node is up {_ago(uptime)}" if uptime is not None and uptime >= 0 else ""
    return NestedReading(
        on,
        decided_by=f"cpu-flags: pvestatd's probe (at its start or the last QEMU update{since}) "
        f"{'lists' if on else 'does not list'} {node} for nested-virt; a module reload since "
        f"then is not seen",
    )


# -- running guests ------------------------------------------------------------------------


def guest_evidence(
    results: Iterable[VmResult], kvm_on: Callable[[VmResult], bool]
) -> dict[str, str]:
    """Node -> the VM whose guest (through its agent) sees vmx/svm under KVM now: nested is on
    for that node now. `kvm_on` says whether a VM runs under KVM (not TCG)."""
    out: dict[str, str] = {}
    for r in results:
        guest = r.guest
        if r.node is None or r.node in out or not r.running or not isinstance(guest, dict):
            continue
        flag = guest.get("virt_flag")
        if flag in ("vmx", "svm") and guest.get("via") == "agent" and kvm_on(r):
            out[r.node] = f"VM {r.vmid}'s guest sees {flag} under KVM (its agent, now)"
    return out
