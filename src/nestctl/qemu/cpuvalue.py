"""The one parser of a QEMU `-cpu` value, used by the predictor (`vm.exposure`) and the oracle
(`qemu.cpuprobe`) alike, so the table and QEMU's own answer read a value the same way.

QEMU's rules (x86_cpu_parse_featurestr): the model comes first; then `feat=value` properties in
order (the last one wins), then every `+feat`, then every `-feat`, so `-vmx` beats `+vmx` whatever
the order. A bare `feat` is the legacy spelling of `feat=on`. Booleans are qapi_bool_parse's exact
words (`nestctl.parse.qemu_bool`). `hv_vpindex` and `hv-vpindex` are one feature.
"""

from __future__ import annotations

from dataclasses import dataclass

from nestctl.parse import qemu_bool


def feature_name(name: str) -> str:
    """QEMU accepts hv_vpindex and hv-vpindex alike; compare in the dashed form."""
    return name.strip().replace("_", "-")


@dataclass(frozen=True, slots=True)
class CpuValue:
    """A -cpu value split as QEMU reads it: the model, then everything after it as written."""

    model: str
    items: tuple[str, ...]

    @property
    def settings(self) -> dict[str, str]:
        """`feat=value` as written, the last one per feature winning (a bare `feat` is `on`)."""
        props: dict[str, str] = {}
        for item in self.items:
            if item.startswith(("+", "-")):
                continue
            key, eq, value = item.partition("=")
            props[feature_name(key)] = value if eq else "on"
        return props

    @property
    def plus(self) -> frozenset[str]:
        return frozenset(feature_name(i[1:]) for i in self.items if i.startswith("+"))

    @property
    def minus(self) -> frozenset[str]:
        return frozenset(feature_name(i[1:]) for i in self.items if i.startswith("-"))

    def state(self, feature: str) -> bool | None:
        """On/off as written for one feature, or None when the value does not say (or says it
        with a word QEMU refuses, so nothing is known)."""
        name = feature_name(feature)
        if name in self.minus:
            return False
        if name in self.plus:
            return True
        value = self.settings.get(name)
        return None if value is None else qemu_bool(value)

    def features(self) -> dict[str, bool]:
        """Effective on/off for every feature the value names with a word QEMU accepts."""
        names = set(self.settings) | self.plus | self.minus
        found = {name: self.state(name) for name in names}
        return {name: truth for name, truth in found.items() if truth is not None}

    @property
    def enforce(self) -> bool:
        """`enforce`: QEMU refuses to start when a feature asked for cannot be given."""
        return self.state("enforce") is True


def parse_cpu_arg(cpu_arg: str) -> CpuValue:
    parts = [p.strip() for p in cpu_arg.strip().split(",")]
    return CpuValue(parts[0], tuple(p for p in parts[1:] if p))
