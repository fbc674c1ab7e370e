"""Daemons this client has paired with, pinned by certificate fingerprint as SSH pins host keys.

``known_daemons.json`` (mode 0600, in the client's config dir) holds, per daemon, its URL, the certificate
it presented at pairing (the daemon's local CA, or the owner's own certificate) with its SHA-256 fingerprint,
and the device token it issued. Later connections trust exactly that certificate; a daemon that presents
anything else is refused with both fingerprints named.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

from cauldron_client.client import Client
from cauldron_client.connection import http_base_url, normalize_url
from cauldron_client.discovery import resolve_daemon
from cauldron_client.errors import CauldronError, ConfigError, ConnectionFailed

KNOWN_DAEMONS_ENV = "CAULDRON_KNOWN_DAEMONS"
CA_PATH = "/pair/ca.pem"


class CertificateChanged(CauldronError):
    """The daemon presented a certificate other than the one pinned at pairing."""


def known_daemons_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(KNOWN_DAEMONS_ENV):
        return Path(environ[KNOWN_DAEMONS_ENV]).expanduser()
    return Path(platformdirs.user_config_dir("shadow-cauldron", appauthor=False)) / "known_daemons.json"


def pem_fingerprint(pem: bytes) -> str:
    """SHA-256 of the first certificate's DER, lower-case hex (what the daemon advertises and shows)."""
    text = pem.decode("ascii", "replace")
    begin = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----", begin)
    if begin < 0 or end < 0:
        raise ConnectionFailed("the daemon's certificate download is not a PEM certificate")
    der = ssl.PEM_cert_to_DER_cert(text[begin : end + len("-----END CERTIFICATE-----")] + "\n")
    return hashlib.sha256(der).hexdigest()


def show_fingerprint(fingerprint: str) -> str:
    return ":".join(fingerprint[i : i + 2] for i in range(0, len(fingerprint), 2)).upper()


def pinned_context(pem: bytes) -> ssl.SSLContext:
    """Trust exactly the pinned certificate: as the root (the daemon's CA) or, with a partial chain, as the
    server certificate itself (the owner's own). Host names are not checked: the daemon is reached by
    addresses that change, and nothing but the pinned key can complete the handshake."""
    context = ssl.create_default_context(cadata=pem.decode("ascii"))
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def fetch_certificate(url: str, timeout: float = 10.0) -> tuple[bytes, str]:
    """The certificate the daemon at ``url`` offers for pinning, fetched without trusting anything yet.

    Trust on first use: the caller shows the fingerprint so the owner can compare it with the one the
    daemon printed (log, QR code, ``cauldronctl pair`` on its machine) before anything secret is sent."""
    base = http_base_url(normalize_url(url))
    if not base.startswith("https://"):
        raise ConfigError(f"{url} is not an https:// or wss:// URL; LAN daemons serve HTTPS (start with --lan)")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nosec B501 - first contact; the fingerprint is checked by the caller
    try:
        with urllib.request.urlopen(base + CA_PATH, timeout=timeout, context=context) as response:  # nosec B310
            pem = bytes(response.read(65536))
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionFailed(f"cannot fetch the certificate from {base}: {exc}") from None
    return pem, pem_fingerprint(pem)


@dataclass(frozen=True)
class KnownDaemon:
    url: str  # wss://host:port/rpc as paired
    fingerprint: str
    pem: str
    token: str
    name: str = ""  # the mDNS instance name, when known
    device_name: str = ""
    token_id: int = 0

    @property
    def endpoint(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port}"


class KnownDaemons:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or known_daemons_path()
        self._entries: list[KnownDaemon] = []
        if self.path.is_file():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = [KnownDaemon(**item) for item in raw.get("daemons", [])]
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{self.path} is not a valid known-daemons file: {exc}") from None

    def all(self) -> list[KnownDaemon]:
        return list(self._entries)

    def by_url(self, url: str) -> KnownDaemon | None:
        endpoint = _endpoint(normalize_url(url))
        return next((e for e in self._entries if e.endpoint == endpoint), None)

    def by_fingerprint(self, fingerprint: str) -> KnownDaemon | None:
        return next((e for e in self._entries if e.fingerprint == fingerprint.lower()), None)

    def by_name(self, name: str) -> KnownDaemon | None:
        return next((e for e in self._entries if e.name and e.name.lower() == name.lower()), None)

    def put(self, entry: KnownDaemon) -> None:
        self._entries = [
            e for e in self._entries if e.endpoint != entry.endpoint and e.fingerprint != entry.fingerprint
        ]
        self._entries.append(entry)
        self.save()

    def save(self) -> None:
        """Atomically, mode 0600 from the first byte: the file holds device tokens."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps({"daemons": [asdict(e) for e in self._entries]}, indent=2).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=".known_daemons.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _endpoint(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    return f"{parts.hostname}:{port}"


def check_pin(url: str, pinned: str, timeout: float = 10.0) -> str:
    """The daemon's current fingerprint; raises CertificateChanged when it is not ``pinned``."""
    _pem, current = fetch_certificate(url, timeout)
    if current != pinned:
        raise CertificateChanged(
            f"the daemon at {url} presents certificate {show_fingerprint(current)}, but this client pinned "
            f"{show_fingerprint(pinned)} when it paired. This can be an attacker on the network; if the daemon's "
            "certificate authority was really replaced, pair again (cauldronctl pair)."
        )
    return current


class PinnedClient(Client):
    """A Client that trusts only the pinned certificate and explains a mismatch."""

    def __init__(self, entry: KnownDaemon, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(url or entry.url, entry.token, ssl=pinned_context(entry.pem.encode("ascii")), **kwargs)
        self.entry = entry

    async def connect(self) -> None:
        try:
            await super().connect()
        except ConnectionFailed as exc:
            if "TLS certificate" in str(exc) or "certificate verify failed" in str(exc):
                await asyncio.to_thread(check_pin, self.url, self.entry.fingerprint)
            raise


def refusal_message(body: str) -> str:
    """The message of a JSON refusal from POST /pair (``{"error", "message"}``), or the body as it came."""
    try:
        reply = json.loads(body)
    except ValueError:
        return body
    return str(reply["message"]) if isinstance(reply, dict) and "message" in reply else body


def pair_with_daemon(
    url: str,
    code: str,
    device_name: str,
    *,
    expected_fingerprint: str | None = None,
    known: KnownDaemons | None = None,
    instance_name: str = "",
    timeout: float = 10.0,
) -> KnownDaemon:
    """Pin the daemon's certificate, exchange ``code`` for a device token over the pinned connection, store both.

    Refuses when the certificate differs from ``expected_fingerprint`` (from the QR code or mDNS) or from a pin
    this client already holds for that address."""
    known = known if known is not None else KnownDaemons()
    ws_url = normalize_url(url)
    pem, fingerprint = fetch_certificate(ws_url, timeout)
    if expected_fingerprint and fingerprint != expected_fingerprint.replace(":", "").lower():
        raise CertificateChanged(
            f"the daemon at {url} presents certificate {show_fingerprint(fingerprint)}, "
            f"not the expected {show_fingerprint(expected_fingerprint.replace(':', '').lower())}; not pairing"
        )
    previous = known.by_url(ws_url)
    if previous is not None and previous.fingerprint != fingerprint:
        raise CertificateChanged(
            f"the daemon at {url} presents certificate {show_fingerprint(fingerprint)}, but this client pinned "
            f"{show_fingerprint(previous.fingerprint)}; remove its entry from {known.path} to pair anew"
        )
    body = json.dumps({"code": code, "device_name": device_name}).encode("utf-8")
    request = urllib.request.Request(  # nosec B310 - https only, checked by fetch_certificate
        http_base_url(ws_url) + "/pair", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=pinned_context(pem)) as response:  # nosec B310
            reply = json.loads(response.read(65536))
    except urllib.error.HTTPError as exc:
        detail = refusal_message(exc.read(2048).decode("utf-8", "replace").strip())
        raise ConnectionFailed(f"pairing refused (HTTP {exc.code}): {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConnectionFailed(f"pairing with {url} failed: {exc}") from None
    entry = KnownDaemon(
        url=ws_url,
        fingerprint=fingerprint,
        pem=pem.decode("ascii"),
        token=str(reply["token"]),
        name=instance_name,
        device_name=str(reply.get("name", device_name)),
        token_id=int(reply.get("token_id", 0)),
    )
    known.put(entry)
    return entry


def client_for(url: str | None, token: str | None, daemon: str | None, *, discover_timeout: float = 3.0) -> Client:
    """The client for the global options: ``--daemon NAME`` is found by mDNS and must be paired (its pin and
    token are used); a ``wss://`` URL this client paired with uses that pairing; anything else is a plain
    Client (the local token, or --token)."""
    if daemon:
        # Called from inside the CLI's event loop: browse on a thread with its own loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            found = pool.submit(asyncio.run, resolve_daemon(daemon, discover_timeout)).result()
        known = KnownDaemons()
        entry = (known.by_fingerprint(found.fingerprint) if found.fingerprint else None) or known.by_name(daemon)
        if entry is None:
            raise ConfigError(
                f"{daemon} ({found.url}) is not paired with this client; run cauldronctl pair {found.url} CODE"
            )
        if found.fingerprint and found.fingerprint != entry.fingerprint:
            raise CertificateChanged(
                f"{daemon} advertises certificate {show_fingerprint(found.fingerprint)}, but this client pinned "
                f"{show_fingerprint(entry.fingerprint)} when it paired; refusing to connect"
            )
        return PinnedClient(entry, url=found.url)
    if url and token is None and normalize_url(url).startswith("wss://"):
        entry = KnownDaemons().by_url(url)
        if entry is not None:
            return PinnedClient(entry, url=normalize_url(url))
    return Client(url, token)
