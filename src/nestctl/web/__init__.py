"""`nestctl serve`: a phone-first web dashboard over the same engine as the CLI.

Layout (one module per concern, one per page or action):
- `settings.py`: what `nestctl serve` was started with (targets, listen address, TLS).
- `backend.py`: the seam to Proxmox: log in as the visitor and get an API for that identity.
- `sessions.py`: server-side sessions (ticket/token never leave the server), login rate limit.
- `security.py`: the one middleware for headers, sessions, cross-origin and CSRF checks.
- `cache.py` + `snapshot.py`: the background-refreshed view of each target the pages render.
- `pages/`: thin routes, one module per page or action; `templates/` and `static/` beside them.

Starlette, Jinja2 and uvicorn are the `serve` extra, imported only by `nestctl serve`.
"""

#: Debian's packages for the `serve` extra (named in the "missing dependency" message).
DEBIAN_PACKAGES = "python3-starlette python3-jinja2 python3-uvicorn"
