"""A small local certificate authority and the LAN listener's server certificate.

Clients pin the SHA-256 fingerprint of the CA certificate (or of the owner's own certificate, with
``tls_cert``/``tls_key``): the server certificate is re-issued whenever the machine's addresses change, and the
pin must survive that. The CA is name-constrained to the hostname, ``localhost`` and ``.local`` names, so a
phone that trusts it cannot be fooled about any public domain name even if the CA key leaked. IP addresses are
not constrained: LAN hosts often have global IPv6 (or public IPv4) addresses, and a certificate for a bare
address is worth little to an attacker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_DAYS = 3650
# iOS accepts at most 825 days for a user-trusted CA's leaf; 397 keeps to the stricter browser rule too.
SERVER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TlsMaterial:
    cert_path: Path  # the server certificate, followed by the CA certificate
    key_path: Path
    pin_pem: bytes  # what clients pin and browsers download: the CA (or the owner's certificate)
    fingerprint: str  # sha256 of pin_pem's DER, lower-case hex

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def fingerprint_of(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _write_private(path: Path, data: bytes) -> None:
    """Write with mode 0600 from the first byte, then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_or_make_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            os.chmod(path, 0o600)
            return key
        log.warning("%s is not an EC key; making a new one", path)
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(path, _key_pem(key))
    return key


def _make_ca(hostname: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Shadow Cauldron local CA ({hostname})"[:64])])
    permitted: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.DNSName("local"),
        x509.DNSName("localhost"),
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def server_names(hostname: str, addresses: Iterable[str]) -> tuple[list[str], list[IpAddress]]:
    dns = sorted({hostname, f"{hostname}.local", "localhost"})
    ips = sorted(
        {ipaddress.ip_address(a) for a in [*addresses, "127.0.0.1", "::1"]}, key=lambda ip: (ip.version, int(ip))
    )
    return dns, ips


def _make_server(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    dns: list[str],
    ips: list[IpAddress],
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    alt += [x509.IPAddress(ip) for ip in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _current_server(path: Path, ca: x509.Certificate) -> x509.Certificate | None:
    if not path.is_file():
        return None
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except ValueError:
        return None


def _still_good(cert: x509.Certificate, ca: x509.Certificate, dns: list[str], ips: list[IpAddress]) -> bool:
    if cert.issuer != ca.subject or cert.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return False
    try:
        cert.verify_directly_issued_by(ca)
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    present_ips = sorted(str(ip) for ip in alt.get_values_for_type(x509.IPAddress))
    return sorted(alt.get_values_for_type(x509.DNSName)) == dns and present_ips == sorted(str(ip) for ip in ips)


def ensure_local_tls(folder: Path, hostname: str, addresses: Iterable[str]) -> TlsMaterial:
    """The CA (made once) and a server certificate for ``hostname``, ``hostname.local`` and ``addresses``,
    re-issued with the same key when those change or it nears expiry."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key = _load_or_make_key(folder / "ca.key")
    ca_path = folder / "ca.pem"
    ca: x509.Certificate | None = None
    if ca_path.is_file():
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        if ca.public_key() != ca_key.public_key():
            log.warning("%s does not match ca.key; making a new CA (paired clients must re-pin)", ca_path)
            ca = None
    if ca is None:
        ca = _make_ca(hostname, ca_key)
        ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        log.info("created a local certificate authority in %s", folder)
    dns, ips = server_names(hostname, addresses)
    server_key = _load_or_make_key(folder / "server.key")
    server_path = folder / "server.pem"
    current = _current_server(server_path, ca)
    if current is None or current.public_key() != server_key.public_key() or not _still_good(current, ca, dns, ips):
        server = _make_server(ca, ca_key, server_key, dns, ips)
        chain = server.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
        _write_private(server_path, chain)
        log.info("issued a server certificate for %s", ", ".join([*dns, *map(str, ips)]))
    return TlsMaterial(
        cert_path=server_path,
        key_path=folder / "server.key",
        pin_pem=ca.public_bytes(serialization.Encoding.PEM),
        fingerprint=fingerprint_of(ca),
    )


def owner_tls(cert_path: Path, key_path: Path) -> TlsMaterial:
    """The owner's own certificate: clients pin its leaf certificate."""
    certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
    leaf = certs[0]
    return TlsMaterial(
        cert_path=cert_path,
        key_path=key_path,
        pin_pem=leaf.public_bytes(serialization.Encoding.PEM),
        fingerprint=fingerprint_of(leaf),
    )
