"""The certificate authorities an outgoing TLS connection trusts: the system's, as Flagger's.

Flagger's HTTP clients (metric providers, webhooks, alerts) trust what Go's ``crypto/x509``
reads on Linux: the first CA bundle file it finds (``$SSL_CERT_FILE``, else a list of the
distributions' usual paths) and then *every* file in the certificate directories
(``$SSL_CERT_DIR``, colon separated, else ``/etc/ssl/certs`` and ``/etc/pki/tls/certs``). A
company CA mounted into the container as ``/etc/ssl/certs/company-ca.crt`` is therefore trusted
by Flagger. OpenSSL's own directory lookup (Python's default) finds a certificate only under its
hashed name (``<hash>.0``), and httpx's default trusts certifi's bundle and nothing else, so
neither would: the context built here reads the same files Go does. Where none exists (an image
without ``ca-certificates``), certifi's bundle is trusted, as httpx would.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import ssl

#: Go's ``certFiles`` for Linux (crypto/x509/root_linux.go), in its order: the first readable
#: one is used.
CERT_FILES: Final = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # OpenSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # CentOS, RHEL 7
    "/etc/ssl/cert.pem",  # Alpine
)
#: Go's ``certDirectories`` for Linux: every file in them is read.
CERT_DIRECTORIES: Final = ("/etc/ssl/certs", "/etc/pki/tls/certs")

_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


def system_trust() -> ssl.SSLContext:
    """The verifying client context for every outgoing HTTPS request (built once a process)."""
    return _system_trust()


@functools.cache
def _system_trust() -> ssl.SSLContext:
    return trust_from_environment(os.environ)


def trust_from_environment(environ: Mapping[str, str]) -> ssl.SSLContext:
    """A client context trusting the certificates Go would read under ``environ``."""
    import ssl

    certificates = system_certificates(environ)
    try:
        if certificates:
            return ssl.create_default_context(cadata="\n".join(certificates))
    except ssl.SSLError:
        # A block that looks like a certificate and is not one: Go skips it, so do we.
        usable = [c for c in certificates if _loads(c)]
        if usable:
            return ssl.create_default_context(cadata="\n".join(usable))
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _loads(certificate: str) -> bool:
    import ssl

    try:
        ssl.create_default_context(cadata=certificate)
    except ssl.SSLError:
        return False
    return True


def system_certificates(environ: Mapping[str, str]) -> list[str]:
    """The distinct PEM certificates of the system's bundle file and certificate directories,
    read as Go's ``loadSystemRoots`` reads them (files that hold none are skipped, as Go's
    ``AppendCertsFromPEM`` skips them)."""
    files = [environ["SSL_CERT_FILE"]] if environ.get("SSL_CERT_FILE") else list(CERT_FILES)
    directories = (
        [d for d in environ["SSL_CERT_DIR"].split(":") if d]
        if environ.get("SSL_CERT_DIR")
        else list(CERT_DIRECTORIES)
    )
    found: dict[str, None] = {}  # ordered and without repeats: Debian's bundle holds them all
    for name in files:
        text = _read(Path(name))
        if text is not None:
            found.update(dict.fromkeys(_certificates(text)))
            break
    for directory in directories:
        for entry in _entries(Path(directory)):
            text = _read(entry)
            if text is not None:
                found.update(dict.fromkeys(_certificates(text)))
    return list(found)


def _entries(directory: Path) -> Iterable[Path]:
    try:
        return sorted(directory.iterdir())
    except OSError:
        return ()


def _read(path: Path) -> str | None:
    try:
        if not path.is_file():
            return None
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def _certificates(text: str) -> list[str]:
    return _PEM_CERTIFICATE.findall(text)
