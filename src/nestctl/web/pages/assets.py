"""Static files (held in memory, served with a content hash), the web app manifest, health."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nestctl import __version__
from nestctl.web import icons

TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@functools.cache
def files() -> dict[str, tuple[bytes, str]]:
    """name -> (content, etag) for every file under static/."""
    out: dict[str, tuple[bytes, str]] = {}
    for item in resources.files("nestctl.web").joinpath("static").iterdir():
        if item.is_file() and not item.name.startswith("."):
            data = item.read_bytes()
            out[item.name] = (data, hashlib.sha256(data).hexdigest()[:16])
    return out


def url(name: str) -> str:
    """The URL of a static file, with its hash so browsers may cache it for good."""
    entry = files().get(name)
    return f"/static/{name}?v={entry[1]}" if entry else f"/static/{name}"


def icon_url(size: int) -> str:
    return f"/icon-{size}.png?v={__version__}"


async def icon(request: Request) -> Response:
    size = request.path_params["size"]
    if size not in icons.SIZES:
        return PlainTextResponse("not found\n", status_code=404)
    data = await asyncio.to_thread(icons.png, size)  # drawn once (a few tenths of a second)
    return Response(
        data,
        media_type="image/png",
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    entry = files().get(name)
    suffix = name[name.rfind(".") :] if "." in name else ""
    if entry is None or suffix not in TYPES:
        return PlainTextResponse("not found\n", status_code=404)
    data, etag = entry
    if request.headers.get("if-none-match") == f'"{etag}"':
        return Response(status_code=304, headers={"etag": f'"{etag}"'})
    return Response(
        data,
        media_type=TYPES[suffix],
        headers={"etag": f'"{etag}"', "cache-control": "public, max-age=31536000, immutable"},
    )


MANIFEST = {
    "name": "nestctl",
    "short_name": "nestctl",
    "description": "Every layer of your Proxmox nested labs: readiness, power and firewall",
    "start_url": "/",
    "scope": "/",
    "display": "standalone",
    "background_color": "#10151c",
    "theme_color": "#10151c",
}


async def manifest(_request: Request) -> Response:
    body: dict[str, object] = dict(MANIFEST)
    body["icons"] = [
        {"src": icon_url(192), "sizes": "192x192", "type": "image/png"},
        {"src": icon_url(512), "sizes": "512x512", "type": "image/png"},
        {"src": url("icon.svg"), "sizes": "any", "type": "image/svg+xml"},
    ]
    return Response(
        json.dumps(body, allow_nan=False),
        media_type="application/manifest+json",
        headers={"cache-control": "no-cache"},
    )


async def health(_request: Request) -> Response:
    return JSONResponse({"ok": True})


routes = [
    Route("/static/{name}", static, methods=["GET"]),
    Route("/icon-{size:int}.png", icon, methods=["GET"]),
    Route("/manifest.webmanifest", manifest, methods=["GET"]),
    Route("/healthz", health, methods=["GET"]),
]
