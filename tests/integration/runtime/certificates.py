"""Throwaway CA, server and client certificates made with the openssl command line."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Certificates:
    """PEM file paths."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _issue(directory: Path, name: str, extensions: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (directory / f"{name}.{suffix}" for suffix in ("key", "csr", "pem", "ext"))
    ext.write_text(extensions)
    _openssl("req", *_EC_KEY, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "1", "-out", str(cert), "-extfile", str(ext),
    )  # fmt: skip
    return cert, key


def make_certificates(directory: Path) -> Certificates:
    """Create a CA and a server (localhost, 127.0.0.1) and a client certificate it signed."""
    _openssl(
        "req", "-x509", *_EC_KEY, "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.pem"),
        "-days", "1", "-subj", "/CN=posgate test CA",
    )  # fmt: skip
    server_cert, server_key = _issue(
        directory, "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    client_cert, client_key = _issue(directory, "inventory-client", "extendedKeyUsage=clientAuth\n")
    return Certificates(directory / "ca.pem", server_cert, server_key, client_cert, client_key)
