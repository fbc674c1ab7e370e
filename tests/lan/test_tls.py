"""The local CA and server certificate, and pinning: the pinned certificate connects, another is refused."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from pathlib import Path

import pytest
from cauldron_client.known_hosts import (
    CertificateChanged,
    KnownDaemons,
    PinnedClient,
    pair_with_daemon,
    show_fingerprint,
)
from cryptography import x509

from cauldrond.daemon import Daemon
from cauldrond.security.tls import ensure_local_tls
from tests.lan.conftest import access_of, lan_url, local_call


def test_ca_and_server_certificate_are_made_once_and_renewed_when_addresses_change(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path / "tls", "gpubox", ["192.168.1.20"])
    for key in ("ca.key", "server.key", "server.pem"):
        assert (tmp_path / "tls" / key).stat().st_mode & 0o777 == 0o600
    leaf = x509.load_pem_x509_certificates(first.cert_path.read_bytes())[0]
    alt = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(alt.get_values_for_type(x509.DNSName)) == {"gpubox", "gpubox.local", "localhost"}
    assert {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)} == {"192.168.1.20", "127.0.0.1", "::1"}
    unchanged = first.cert_path.read_bytes()
    assert ensure_local_tls(tmp_path / "tls", "gpubox", ["192.168.1.20"]).cert_path.read_bytes() == unchanged

    moved = ensure_local_tls(tmp_path / "tls", "gpubox", ["192.168.1.77"])
    assert moved.cert_path.read_bytes() != unchanged  # re-issued for the new address...
    assert moved.fingerprint == first.fingerprint  # ...under the same CA, so pins survive
    leaf = x509.load_pem_x509_certificates(moved.cert_path.read_bytes())[0]
    alt = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "192.168.1.77" in {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}


async def test_a_phone_that_trusts_the_ca_verifies_the_server_by_name(lan_daemon: Daemon) -> None:
    tls = access_of(lan_daemon).tls
    assert tls is not None
    context = ssl.create_default_context(cadata=tls.pin_pem.decode())  # full checks, host name included
    port = lan_daemon.frontend.lan_port  # type: ignore[union-attr]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    writer.write(b"GET /pair/ca.pem HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    body = await reader.read()
    writer.close()
    assert body.startswith(b"HTTP/1.1 200") and tls.pin_pem in body


async def test_pinned_fingerprint_connects_and_a_changed_one_is_refused(lan_daemon: Daemon, tmp_path: Path) -> None:
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    known = KnownDaemons(tmp_path / "known.json")
    entry = await asyncio.to_thread(pair_with_daemon, lan_url(lan_daemon), code, "laptop", known=known)
    async with PinnedClient(entry) as client:
        assert (await client.call("system.info"))["api_version"] == 1

    # The same address now answers with a certificate from another CA (an attacker, or a reinstalled daemon).
    impostor = ensure_local_tls(tmp_path / "other", "gpubox", [])
    forged = dataclasses.replace(entry, pem=impostor.pin_pem.decode(), fingerprint=impostor.fingerprint)
    with pytest.raises(CertificateChanged) as refused:
        async with PinnedClient(forged):
            pass
    message = str(refused.value)
    assert show_fingerprint(entry.fingerprint) in message and show_fingerprint(impostor.fingerprint) in message

    # Pairing again against a pinned address that changed its certificate is refused as well.
    code = (await local_call(lan_daemon, "pairing.create_code"))["code"]
    known.put(forged)
    with pytest.raises(CertificateChanged):
        await asyncio.to_thread(pair_with_daemon, lan_url(lan_daemon), code, "laptop", known=known)
    with pytest.raises(CertificateChanged):  # a fingerprint from the QR code that does not match
        await asyncio.to_thread(
            pair_with_daemon,
            lan_url(lan_daemon),
            code,
            "laptop",
            expected_fingerprint=impostor.fingerprint,
            known=KnownDaemons(tmp_path / "fresh.json"),
        )
