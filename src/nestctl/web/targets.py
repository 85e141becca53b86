"""The targets `nestctl serve` shows: `--api URL`, or named targets of the config file (all of
them unless `--target` picks some). Only URLs, fingerprints and parents are taken from the file:
each visitor logs in with their own identity, never with the file's credentials."""

from __future__ import annotations

import os

from nestctl.cli.common import NestctlError
from nestctl.web.settings import TargetSpec


def load_targets(
    api_url: str | None,
    fingerprint: str | None,
    names: tuple[str, ...],
    config_file: str | None,
) -> list[TargetSpec]:
    from nestctl.api.targets import TargetConfigError, config_path  # noqa: PLC0415
    from nestctl.api.targets import load_targets as load_config  # noqa: PLC0415
    from nestctl.api.tls import normalize_fingerprint  # noqa: PLC0415

    if fingerprint:
        try:
            normalize_fingerprint(fingerprint)
        except ValueError as exc:
            raise NestctlError(f"--fingerprint: {exc}") from None
    if api_url:
        if names:
            raise NestctlError("give either --api or --target, not both")
        if not api_url.startswith("https://"):
            raise NestctlError(f"--api {api_url}: only https:// (secrets must not travel in clear)")
        return [TargetSpec("api", api_url, fingerprint)]
    path = config_path(os.environ, config_file)
    try:
        configured = load_config(path, required=bool(config_file or names))
    except TargetConfigError as exc:
        raise NestctlError(str(exc)) from None
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise NestctlError(
            f"{path}: no target {', '.join(unknown)} (there: {', '.join(configured) or 'none'})"
        )
    chosen = [configured[n] for n in names] if names else list(configured.values())
    if not chosen:
        raise NestctlError(
            f"nestctl serve needs a target: --api https://HOST:8006, or [targets.NAME] in {path}"
        )
    return [
        TargetSpec(
            t.name,
            t.url,
            fingerprint or t.fingerprint,
            f"{t.parent[0]}/{t.parent[1]}" if t.parent else None,
            t.ca_file,
        )
        for t in chosen
    ]
