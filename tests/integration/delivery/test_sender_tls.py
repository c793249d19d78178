"""HttpSender over real TLS: a receiver on 127.0.0.1 whose certificate comes from a private CA
(made by trustme) is refused by default and trusted once that CA is named by
`TIDINGS_CA_BUNDLE`; verification is never off (a wrong host name still fails)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from tidings.config import Settings, SettingsError
from tidings.delivery.sender import HttpSender, tls_context

pytestmark = pytest.mark.timeout(30)


def bundle_of(ca: trustme.CA, folder: Path) -> str:
    path = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def send(sender: HttpSender, url: str) -> tuple[int | None, str | None]:
    try:
        result = await sender.send(url, b"{}", {"Content-Type": "application/json"})
    finally:
        await sender.close()
    return result.status_code, result.error


async def test_a_private_ca_is_refused_without_the_bundle(tls_receiver: int) -> None:
    sender = HttpSender(allow_private=True)
    status, error = await send(sender, f"https://127.0.0.1:{tls_receiver}/hook")
    assert status is None
    assert error is not None and "certificate verify failed" in error


async def test_the_bundle_makes_the_private_ca_trusted(
    tls_receiver: int, ca: trustme.CA, tmp_path: Path
) -> None:
    sender = HttpSender(allow_private=True, ca_bundle=bundle_of(ca, tmp_path))
    assert await send(sender, f"https://127.0.0.1:{tls_receiver}/hook") == (200, None)


async def test_the_bundle_does_not_switch_host_name_checks_off(
    tls_receiver: int, ca: trustme.CA, tmp_path: Path
) -> None:
    # the certificate names 127.0.0.1; `localhost` reaches the same server under another name
    sender = HttpSender(allow_private=True, ca_bundle=bundle_of(ca, tmp_path))
    status, error = await send(sender, f"https://localhost:{tls_receiver}/hook")
    assert status is None
    assert error is not None and "localhost" in error


def test_the_bundle_adds_to_the_system_roots(ca: trustme.CA, tmp_path: Path) -> None:
    system = tls_context()
    with_bundle = tls_context(bundle_of(ca, tmp_path))
    assert with_bundle.verify_mode == ssl.CERT_REQUIRED and with_bundle.check_hostname
    assert with_bundle.cert_store_stats()["x509_ca"] == system.cert_store_stats()["x509_ca"] + 1


def test_a_file_that_is_not_pem_stops_the_sender_at_once(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        HttpSender(ca_bundle=str(junk))


def test_the_setting_names_an_existing_file(ca: trustme.CA, tmp_path: Path) -> None:
    path = bundle_of(ca, tmp_path)
    assert Settings.from_env({"TIDINGS_CA_BUNDLE": path}).ca_bundle == path
    assert Settings.from_env({}).ca_bundle is None
    with pytest.raises(SettingsError, match="TIDINGS_CA_BUNDLE"):
        Settings.from_env({"TIDINGS_CA_BUNDLE": str(tmp_path / "missing.pem")})
