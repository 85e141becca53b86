"""The targets `nestctl serve` shows: `--api URL` or named targets of the config file."""

from __future__ import annotations

from nestctl.cli.common import NestctlError
from nestctl.web.settings import TargetSpec


def load_targets(
    api_url: str | None,
    fingerprint: str | None,
    names: tuple[str, ...],
    config_file: str | None,
) -> list[TargetSpec]:
    if api_url:
        if names:
            raise NestctlError("give either --api or --target, not both")
        if not api_url.startswith("https://"):
            raise NestctlError(
                f"--api {api_url}: only https:// (a token or ticket must not travel in clear)"
            )
        return [TargetSpec("api", api_url, fingerprint)]
    raise NestctlError("nestctl serve needs a target: --api https://HOST:8006")
