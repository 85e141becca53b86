"""The Proxmox VE API: our own small client and what it reads.

- `client.py`: `ApiClient`, the one door to a Proxmox API (auth, TLS pinning, errors, tasks).
- `errors.py`: typed errors carrying the HTTP status and Proxmox's own message.
- `tls.py`: certificate verification and SHA-256 pinning that the environment cannot override.
- `credentials.py`: API tokens and user + password, read from files or the environment, never argv.
- `targets.py`: named targets from `~/.config/nestctl/config.toml`.

requests is imported lazily (the `api` extra; Debian: python3-requests), so
local checks start fast and run without it.
"""
