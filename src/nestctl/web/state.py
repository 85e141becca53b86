"""What the app holds between requests (one object on `app.state.web`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nestctl.web.backend import Connector
from nestctl.web.cache import Refresher
from nestctl.web.follow import Followers
from nestctl.web.sessions import LoginLimiter, SessionStore
from nestctl.web.settings import ServeSettings
from nestctl.web.snapshot import TreeBuilder


@dataclass
class WebState:
    settings: ServeSettings
    connector: Connector
    tree: TreeBuilder
    sessions: SessionStore
    limiter: LoginLimiter
    cache: Refresher
    followers: Followers = field(default_factory=Followers)
    #: Extra per-VM data for the VM page (the engine's analysis of one VM).
    vm_detail: Callable[..., Any] | None = None
