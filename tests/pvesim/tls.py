"""A self-signed certificate made at start, like the one `pvecm updatecerts` gives a new node."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from pathlib import Path


def make_certificate(directory: Path, name: str = "pve1.lab") -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, made with the openssl CLI."""
    cert, key = directory / "pve-ssl.pem", directory / "pve-ssl.key"
    if shutil.which("openssl") is None:
        raise FileNotFoundError(
            "pvesim makes its certificate with the openssl command: install Debian's openssl"
        )
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3",
            "-subj",
            f"/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN={name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def fingerprint(cert: Path) -> str:
    """SHA-256 of the DER certificate as `pvenode cert info` shows it: AA:BB:...:FF."""
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
