"""Metric families as plain data: a name from the catalogue and its samples.

`Families` collects samples in catalogue order and refuses label values that are not
identifiers, so nothing a guest, an API reply or a file under --root says can become free text
in a label (a bad value is dropped and counted as a failed probe instead).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import NamedTuple

from nestctl.metrics.catalogue import CATALOGUE

#: Label values we accept: identifiers (codes, enum states, node names), never prose.
_LABEL_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,79}")
#: Proxmox node names are host names (one DNS label); pve-exporter's id is `node/<name>`.
_NODE_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class Sample(NamedTuple):
    labels: tuple[str, ...]  # values, in the catalogue's label order
    value: float


class Family(NamedTuple):
    name: str
    help: str
    label_names: tuple[str, ...]
    samples: list[Sample]


def node_id(name: object) -> str | None:
    """`node/<name>` exactly as prometheus-pve-exporter writes it, or None for a bad name."""
    if isinstance(name, str) and _NODE_NAME.fullmatch(name):
        return f"node/{name}"
    return None


def vm_id(vmid: object) -> str | None:
    """`qemu/<vmid>` exactly as prometheus-pve-exporter writes it (VMIDs: 100..999999999)."""
    if isinstance(vmid, int) and not isinstance(vmid, bool) and 100 <= vmid <= 999_999_999:
        return f"qemu/{vmid}"
    return None


def is_label_value(value: object) -> bool:
    return isinstance(value, str) and _LABEL_VALUE.fullmatch(value) is not None


def as_value(value: object) -> float | None:
    """A JSON bool/number as a sample value; None (no series) for null or anything else."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


class Families:
    """Samples per family, emitted in catalogue order (HELP/TYPE once per family)."""

    def __init__(self) -> None:
        self._samples: dict[str, dict[tuple[str, ...], float]] = {}
        # Values already checked: a cluster repeats each id in dozens of series.
        self._good: set[str] = {""}  # an empty id: a series about no single target

    def _checked(self, name: str, labels: dict[str, str]) -> tuple[str, ...] | None:
        spec = CATALOGUE[name].labels
        if len(labels) != len(spec):
            raise ValueError(f"{name}: labels {sorted(labels)} != {sorted(spec)}")
        values = tuple(labels[k] for k in spec)
        good = self._good
        for v in values:
            if v not in good:
                if not is_label_value(v):
                    return None
                good.add(v)
        return values

    def add(self, name: str, value: float, **labels: str) -> bool:
        """Add one sample; False (and nothing added) when a label value is not an identifier."""
        values = self._checked(name, labels)
        if values is None:
            return False
        self._samples.setdefault(name, {})[values] = value
        return True

    def gauge(self, name: str, value: object, probe_id: str | None, **labels: str) -> None:
        """A JSON value as a sample; null means "could not determine": no sample, and a
        `nestctl_probe_failed` series naming it (unknown is never a guessed 0)."""
        number = as_value(value)
        if number is None:
            self.failed(probe_id, name.removeprefix("nestctl_"))
            return
        self.add(name, number, **labels)

    def failed(self, target: str | None, probe: str) -> None:
        if target is not None:
            self.add("nestctl_probe_failed", 1.0, id=target, probe=probe)

    def enum(self, name: str, states: tuple[str, ...], active: object, **labels: str) -> None:
        """One series per state, 1 on the active one (pve-exporter's pve_ha_state pattern)."""
        spec = CATALOGUE[name].labels
        key = next(k for k in spec if k not in labels)
        values = self._checked(name, {**labels, key: states[0]})
        if values is None:
            return
        at = spec.index(key)
        samples = self._samples.setdefault(name, {})
        for state in states:  # our own constants: no need to check each again
            samples[(*values[:at], state, *values[at + 1 :])] = 1.0 if state == active else 0.0

    def __iter__(self) -> Iterator[Family]:
        for name, spec in CATALOGUE.items():
            samples = self._samples.get(name)
            if samples:
                body = [Sample(k, v) for k, v in samples.items()]
                yield Family(name, spec.help, spec.labels, body)

    def count(self) -> int:
        return sum(len(s) for s in self._samples.values())
