"""A node's KVM `nested` parameter as some source read it (SSH, Prometheus, the API's CPU-flag
listing), or why it could not be: shared by the collectors and `evidence.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NestedReading:
    """The KVM module's nested parameter as read on the node (over SSH), or why not."""

    live: bool | None
    after_reboot: bool | None = None
    decided_by: str | None = None
    problem: str | None = None  # why live is None
    product_uuid: str | None = None  # the node's DMI product_uuid (read with it over SSH)

    def to_json(self) -> dict[str, Any]:
        return {"live": self.live, "after_reboot": self.after_reboot, "decided_by": self.decided_by}


#: Reads one node's nested parameter: (node name, address or None) -> reading.
NestedReader = Callable[[str, str | None], NestedReading]
