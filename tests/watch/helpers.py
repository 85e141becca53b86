"""What the watch tests share: a recording sender, configs, collectors on the simulator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nestctl.api.client import ApiClient
from nestctl.api.credentials import ApiToken
from nestctl.api.targets import Target
from nestctl.vm.collect.api import NestedReading
from nestctl.watch.collect import Collector
from nestctl.watch.config import Route, WatchConfig
from nestctl.watch.delivery import Outcome
from nestctl.watch.messages import Message
from nestctl.watch.service import Watch
from nestctl.watch.state import StateStore

#: 2026-12-07 12:00:00 UTC, a Monday noon: outside any quiet hours the tests set.
NOON = 1_796_644_800.0


@dataclass
class Recorder:
    """A sender that keeps every message (and can be told to fail)."""

    sent: list[tuple[str, Message]] = field(default_factory=list)
    failing: bool = False

    def __call__(self, route: Route, message: Message) -> list[Outcome]:
        if self.failing:
            return [Outcome(route.name, False, "not delivered")]
        self.sent.append((route.name, message))
        return [Outcome(route.name, True, "delivered")]

    def titles(self) -> list[str]:
        return [m.title for _, m in self.sent]

    def clear(self) -> None:
        self.sent.clear()


def config(routes: tuple[Route, ...] | None = None, **numbers: float) -> WatchConfig:
    defaults = {"hold_down": 60.0, "clear_hold": 60.0, "cheap_every": 30.0, "full_every": 600.0}
    defaults.update(numbers)
    quiet = numbers.pop("quiet", None)  # type: ignore[call-overload]
    return WatchConfig(
        routes=routes or (Route("phone", urls=("json://127.0.0.1:9/",)),),
        dashboard_url="https://dash.example:8443",
        timezone="UTC",
        quiet_hours=quiet,
        numbers={k: v for k, v in defaults.items() if k != "quiet"},
    )


def sim_client(sim: Any) -> Callable[[Target], ApiClient]:
    def open_client(target: Target) -> ApiClient:
        token = ApiToken.parse(sim.root_token, source="test")
        return ApiClient(target.url, token, fingerprint=target.fingerprint, timeout=5, retries=0)

    return open_client


def sim_nested(sim: Any) -> Callable[[str, str | None], NestedReading]:
    """The nested parameter as the SSH reader would bring it back: from the node's fixture
    root (sys/module/kvm_*/parameters/nested, etc/modprobe.d), the files `nestctl host` reads
    there. A fake only because the simulator's nodes have no SSH."""
    from nestctl.vm.collect.ssh import parse_remote  # noqa: PLC0415

    def read(node: str, _address: str | None) -> NestedReading:
        root = sim.cluster.nodes[node].root
        lines = []
        for module in ("kvm_intel", "kvm_amd"):
            f = Path(root or "/nonexistent") / "sys/module" / module / "parameters/nested"
            if f.is_file():
                lines.append(f"{module} {f.read_text().strip()}")
        return parse_remote("product_uuid \n" + "\n".join(lines))

    return read


def watch_on(
    sims: dict[str, Any],
    state: Path,
    send: Recorder,
    cfg: WatchConfig | None = None,
    parents: dict[str, tuple[str, int]] | None = None,
    nested: bool = True,
) -> Watch:
    collectors = []
    for name, sim in sims.items():
        target = Target(
            name, url=sim.url, fingerprint=sim.fingerprint, parent=(parents or {}).get(name)
        )
        collectors.append(
            Collector(
                target,
                sim_client(sim),
                nested_reader=sim_nested(sim) if nested else None,
            )
        )
    return Watch(cfg or config(), collectors, StateStore(str(state)), send)
