"""The four shortcuts every API door offers (`ApiClient` over HTTPS, `PveshApi` over pvesh)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiVerbs:
    """`get`/`post`/`put`/`delete` over one `request(method, path, params)`."""

    def request(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params)

    def post(self, path: str, **params: Any) -> Any:
        return self.request("POST", path, params)

    def put(self, path: str, **params: Any) -> Any:
        return self.request("PUT", path, params)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params)
