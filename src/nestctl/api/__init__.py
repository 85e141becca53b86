"""The Proxmox VE API: our own small client and what it reads.

- `client.py`: `ApiClient`, the one door to a Proxmox API (auth, TLS pinning, errors, tasks).
- `errors.py`: typed errors carrying the HTTP status and Proxmox's own message.
- `tls.py`: certificate verification and SHA-256 pinning that the environment cannot override.
- `transport.py`: HTTP/1.1 over that TLS policy, with a keep-alive pool per host.
- `credentials.py`: API tokens and user + password, read from files or the environment, never argv.
- `targets.py`: named targets from `~/.config/nestctl/config.toml`.

Nothing here needs a package beyond Python (no requests since issue 24), and the transport is
imported only when a client is made, so local checks start fast.
"""
