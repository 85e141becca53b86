"""`POST /prefs/all-vms`: this visitor's "judge every VM as if it wanted nesting" (the dashboard's
`--all-vms`), off by default. Kept in the session; `common.all_vms` reads it for every page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nestctl.web.pages.common import form, see_other, session


def _local(path: str) -> str:
    """Back to a page of this dashboard only (never another site: no scheme, no //host)."""
    ok = path.startswith("/") and not path.startswith(("//", "/\\")) and path.isprintable()
    return path if ok else "/"


async def set_all_vms(request: Request) -> Response:
    data = form(request)
    session(request).all_vms = data.get("all_vms") == "1"
    return see_other(_local(data.get("back", "/")))


routes = [Route("/prefs/all-vms", set_all_vms, methods=["POST"])]
