"""Consoles through Proxmox's console API: a VM's screen (noVNC) and terminals (xterm.js).

- `broker.py`: asks Proxmox for `vncproxy`/`termproxy` as the visitor; one-time grants per session.
- `upstream.py`: the stream to Proxmox (a pinned WebSocket to `vncwebsocket`, or localhost TCP in
  local mode).
- `links.py`: which layer a console belongs to; the consoles a broken link points to.
- `vendor.py`: the packaged noVNC and xterm.js the browser runs (never copied into this repo).

The routes are in `nestctl.web.pages.console`.
"""
