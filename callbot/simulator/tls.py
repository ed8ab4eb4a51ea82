"""The emulator's local certificate authority and server certificate.

msal refuses a non-HTTPS authority, so the emulator serves TLS with a certificate from
a CA it creates under the state directory. ``ca.pem`` is what clients trust; it is
reused across restarts (clients may have cached its path), while the server
certificate is regenerated whenever it is missing or the CA changed.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_IDENTITIES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the files ``ensure_certificates`` wrote."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def ensure_certificates(state_dir: Path, extra_hosts: tuple[str, ...] = ()) -> TlsFiles:
    """Create (or reuse) the CA and a server certificate for the local host names.

    1. Reuse ``ca.pem`` + ``ca-key.pem`` when both exist; otherwise create a new CA.
    2. Issue ``server.pem`` / ``server-key.pem`` if either is missing or the CA is new,
       valid for 127.0.0.1, localhost, ::1 and ``extra_hosts``.
    Keys are written with mode 0600.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_cert=state_dir / "ca.pem",
        ca_key=state_dir / "ca-key.pem",
        server_cert=state_dir / "server.pem",
        server_key=state_dir / "server-key.pem",
    )
    new_ca = not (files.ca_cert.exists() and files.ca_key.exists())
    if new_ca:
        ca = trustme.CA(organization_name="Callbot Teams emulator")
        files.ca_cert.write_bytes(ca.cert_pem.bytes())
        _write_private(files.ca_key, ca.private_key_pem.bytes())
    else:
        ca = trustme.CA.from_pem(files.ca_cert.read_bytes(), files.ca_key.read_bytes())
    if new_ca or not (files.server_cert.exists() and files.server_key.exists()):
        hosts = tuple(dict.fromkeys((*SERVER_IDENTITIES, *extra_hosts)))
        leaf = ca.issue_cert(
            *hosts,
            common_name="Teams emulator",
            not_after=datetime.datetime.now(datetime.UTC)
            + datetime.timedelta(days=825),
        )
        files.server_cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
        _write_private(files.server_key, leaf.private_key_pem.bytes())
    return files


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
