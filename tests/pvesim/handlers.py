"""What every endpoint module shares: the request context, errors, the registry, value typing."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.pvesim.auth import Identity, Users
    from tests.pvesim.cluster import Cluster, Ct, Node, Vm
    from tests.pvesim.schema import Param, Route, Schema


class ApiError(Exception):
    """An error Proxmox answers with: status, message (newline-terminated) and `errors`."""

    def __init__(self, status: int, message: str, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message if message.endswith("\n") else message + "\n"
        self.errors = dict(errors) if errors else None


def param_error(errors: Mapping[str, str]) -> ApiError:
    return ApiError(400, "Parameter verification failed.", errors)


def perm_error(path: str, privs: str) -> ApiError:
    return ApiError(403, f"Permission check failed ({path}, {privs})")


@dataclass
class Extra:
    """A result with keys beside `data` (the task log's `total`)."""

    data: Any
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Ctx:
    route: Route
    params: dict[str, Param]
    who: Identity
    users: Users
    cluster: Cluster
    schema: Schema
    fingerprint: str = ""  # the server certificate's, as /nodes reports it

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name, default)
        if isinstance(value, list):
            return value[-1] if value else default
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.text(name)
        return default if value is None else int(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        return value.lower() in ("1", "true", "yes", "on")

    @property
    def node(self) -> Node:
        name = self.route.uri_params["node"]
        node = self.cluster.entry if name == "localhost" else self.cluster.nodes.get(name)
        if node is None:  # what pveproxy says for a name it cannot resolve
            raise ApiError(
                500,
                f"hostname lookup '{name}' failed - failed to get address info for: {name}: "
                "Name or service not known",
            )
        return node

    @property
    def vm(self) -> Vm:
        node = self.node
        vmid = int(self.route.uri_params["vmid"])
        vm = node.vms.get(vmid)
        if vm is None:
            raise ApiError(
                500,
                f"Configuration file 'nodes/{node.name}/qemu-server/{vmid}.conf' does not exist",
            )
        return vm

    @property
    def ct(self) -> Ct:
        node = self.node
        vmid = int(self.route.uri_params["vmid"])
        ct = node.cts.get(vmid)
        if ct is None:
            raise ApiError(
                500, f"Configuration file 'nodes/{node.name}/lxc/{vmid}.conf' does not exist"
            )
        return ct

    def require(self, path: str, *privs: str, any_of: bool = False) -> None:
        """A check made inside a handler (per-option config privileges)."""
        have = self.users.privileges(self.who, path)
        if any_of:
            if not have & set(privs):
                raise perm_error(path, "|".join(privs))
            return
        for priv in privs:
            if priv not in have:
                raise perm_error(path, priv)


Handler = Callable[[Ctx], Any]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(method: str, template: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[(method, template)] = func
        return func

    return register


def index(*names: str, key: str = "name") -> list[dict[str, str]]:
    """A directory listing, as Proxmox answers a path that only has sub-paths."""
    return [{key: n} for n in names]


def typed(props: Mapping[str, Any], key: str, value: str) -> Any:
    """A config value as Proxmox's JSON has it: integer/number/boolean schema types become
    numbers (check_type in parse_vm_config), everything else stays a string."""
    prop = props.get(key) or props.get(re.sub(r"\d+$", "[n]", key)) or {}
    kind = prop.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            number = float(value)
            return int(number) if number.is_integer() else number
    except ValueError:
        return value
    if kind == "boolean":
        low = value.lower()
        if low in ("1", "on", "yes", "true"):
            return 1
        if low in ("0", "off", "no", "false"):
            return 0
    return value
