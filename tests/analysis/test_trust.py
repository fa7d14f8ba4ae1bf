"""Outgoing HTTPS trusts the system's certificates as Flagger's Go clients do: the bundle file and
every file of the certificate directories, so a company CA mounted as
/etc/ssl/certs/company-ca.crt (no OpenSSL hash name) is trusted by webhooks, alerts and metric
providers alike. Checked against a real HTTPS server on 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import analysis._trust as trust
import config
from analysis import open_webhook_caller, webhook_payload
from engine.shell.alerts import open_alert_sender
from tests.tls_certs import TEST_CA_PEM, serving_https


def _subjects(context: ssl.SSLContext) -> list[str]:
    return [
        value
        for cert in context.get_ca_certs()
        for rdn in cert["subject"]
        for key, value in rdn
        if key == "commonName"
    ]


@pytest.fixture
def system_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty system store (SSL_CERT_FILE and SSL_CERT_DIR point into tmp_path); the cached
    process-wide context is rebuilt from it and forgotten afterwards."""
    certs = tmp_path / "certs"
    certs.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca-certificates.crt"))
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    trust._system_trust.cache_clear()
    yield certs
    trust._system_trust.cache_clear()


@pytest.fixture
def https_hook() -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTPS hook on 127.0.0.1 whose certificate the test CA signed; yields its URL and
    the bodies it received."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving_https(Handler) as url:
        yield f"{url}/hook", received


def test_every_file_of_the_directories_is_read_after_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(TEST_CA_PEM)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "company-ca.crt").write_text(f"# the company CA\n{TEST_CA_PEM}")  # no hash name
    (one / "README").write_text("not a certificate")
    (two / "nested").mkdir()
    environ = {"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": f"{one}:{two}"}
    # The same certificate in the bundle and a directory is trusted once.
    assert trust.system_certificates(environ) == [TEST_CA_PEM.strip()]
    assert _subjects(trust.trust_from_environment(environ)) == ["canary-engine test CA"]
    # A bundle file that is missing is skipped: the directories are still read.
    missing = {"SSL_CERT_FILE": str(tmp_path / "missing"), "SSL_CERT_DIR": str(one)}
    assert trust.system_certificates(missing) == [TEST_CA_PEM.strip()]


def test_a_block_that_is_no_certificate_is_skipped(tmp_path: Path) -> None:
    broken = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----"
    (tmp_path / "broken.pem").write_text(broken)
    (tmp_path / "good.pem").write_text(TEST_CA_PEM)
    environ = {"SSL_CERT_FILE": str(tmp_path / "none"), "SSL_CERT_DIR": str(tmp_path)}
    assert len(trust.system_certificates(environ)) == 2
    assert _subjects(trust.trust_from_environment(environ)) == ["canary-engine test CA"]


def test_without_a_system_store_certifis_bundle_is_trusted(tmp_path: Path) -> None:
    environ = {"SSL_CERT_FILE": str(tmp_path / "none"), "SSL_CERT_DIR": str(tmp_path)}
    context = trust.trust_from_environment(environ)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) > 50  # certifi's public CAs
    assert "canary-engine test CA" not in _subjects(context)


async def test_a_webhook_signed_by_a_ca_mounted_in_the_cert_directory_is_called(
    system_store: Path, https_hook: tuple[str, list[bytes]]
) -> None:
    url, received = https_hook
    hook = config.Webhook.model_validate({"name": "smoke", "url": url})
    payload = webhook_payload("podinfo", "test", "Progressing", "abc", {})

    async def no_sleep(seconds: float) -> None:
        pass

    async with open_webhook_caller(sleep=no_sleep) as caller:
        refused = await caller.call(hook, payload)
    assert not refused.ok and "CERTIFICATE_VERIFY_FAILED" in refused.message

    (system_store / "company-ca.crt").write_text(TEST_CA_PEM)
    trust._system_trust.cache_clear()
    async with open_webhook_caller(sleep=no_sleep) as caller:
        outcome = await caller.call(hook, payload)
    assert outcome.ok, outcome.message
    assert b"podinfo" in received[-1]


async def test_an_alert_to_a_hook_signed_by_a_ca_in_the_system_bundle_is_sent(
    system_store: Path, https_hook: tuple[str, list[bytes]]
) -> None:
    url, received = https_hook
    (system_store.parent / "ca-certificates.crt").write_text(TEST_CA_PEM)
    async with open_alert_sender() as sender:
        error = await sender.send(
            "rocket",
            url,
            message="New revision detected",
            canary="podinfo",
            namespace="test",
            severity="info",
        )
    assert error == ""
    assert b"New revision detected" in received[-1]
