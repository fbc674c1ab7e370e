"""Pairing: one-time codes exchanged for per-device tokens, the /pair page, and its brute-force lockout.

A code is 8 characters from an alphabet without look-alikes (about 40 bits), lives 5 minutes, and works once.
Guessing is capped per client address: 5 wrong codes lock that address out for 15 minutes, correct code or not.
"""

from __future__ import annotations

import html
import io
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import qrcode  # type: ignore[import-untyped]  # pure Python, no stubs published
from aiohttp import web

from cauldrond.web.auth import COOKIE_NAME, hash_token, new_device_token
from cauldrond.web.guards import same_origin

if TYPE_CHECKING:
    from cauldrond.store import Store
    from cauldrond.web.access import Access

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 8
CODE_TTL_S = 300.0
MAX_FAILURES = 5
LOCKOUT_S = 900.0
MAX_DEVICE_NAME = 64
COOKIE_MAX_AGE_S = 400 * 86400  # the longest lifetime browsers accept


def normalize_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


@dataclass
class _Code:
    expires_at: float


class PairingCodes:
    """Live codes, kept in memory only: a restart invalidates them, which is what a one-time code should do."""

    def __init__(self, ttl_s: float = CODE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._codes: dict[str, _Code] = {}

    def create(self) -> tuple[str, float]:
        """A new code and its lifetime in seconds."""
        self._expire()
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        self._codes[code] = _Code(self.clock() + self.ttl_s)
        return code, self.ttl_s

    def redeem(self, presented: str) -> bool:
        """True once for a live code; the code is gone afterwards."""
        self._expire()
        entry = self._codes.pop(normalize_code(presented), None)
        return entry is not None

    def _expire(self) -> None:
        now = self.clock()
        for code in [c for c, entry in self._codes.items() if entry.expires_at <= now]:
            del self._codes[code]


class FailureLimiter:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        lockout_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.clock = clock
        self._failures: dict[str, list[float]] = {}

    def locked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may)."""
        now = self.clock()
        recent = [t for t in self._failures.get(address, []) if now - t < self.lockout_s]
        self._failures[address] = recent
        if len(recent) < self.max_failures:
            return 0.0
        return max(0.0, recent[-self.max_failures] + self.lockout_s - now)

    def fail(self, address: str) -> None:
        self._failures.setdefault(address, []).append(self.clock())
        if len(self._failures) > 10_000:  # bound memory against address-spraying
            oldest = min(self._failures, key=lambda a: self._failures[a][-1] if self._failures[a] else 0.0)
            del self._failures[oldest]


def render_qr(text: str) -> str:
    """``text`` as a QR code drawn with block characters, for a terminal or the daemon's log."""
    code = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(text)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue()


def pairing_link(base_url: str, code: str, fingerprint: str | None) -> str:
    link = f"{base_url.rstrip('/')}/pair?code={code}"
    return link + (f"&fp={fingerprint}" if fingerprint else "")


async def pair_device(store: Store, name: str) -> tuple[str, int]:
    """Create a device token; the plain token is returned once and only its hash is stored."""
    token = new_device_token()
    row = await store.tokens.add(name, hash_token(token))
    return token, row.id


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Pair with Shadow Cauldron</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
input,button{{font-size:1.1rem;padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}}</style></head>
<body><h1>Pair this device</h1>
<p>Enter the code shown by <code>cauldronctl pair</code> or in the daemon's log.</p>
<form method="post" action="/pair">
<label>Pairing code <input name="code" value="{code}" autocomplete="one-time-code" autocapitalize="characters"
 required></label>
<label>Device name <input name="device_name" value="browser" maxlength="64" required></label>
<button type="submit">Pair</button></form>
{tls}
</body></html>"""
TLS_NOTE = """<p>First time on this device? <a href="/pair/ca.pem">Download the certificate authority</a> and
trust it (docs/lan.md has the steps for iOS and Android). Its SHA-256 fingerprint is<br><code>{fp}</code>.</p>"""


def _page(code: str, fingerprint: str | None) -> str:
    tls = TLS_NOTE.format(fp=html.escape(fingerprint)) if fingerprint else ""
    return PAGE.format(code=html.escape(normalize_code(code)[:CODE_LENGTH]), tls=tls)


class PairingRoutes:
    """GET /pair, POST /pair and GET /pair/ca.pem; open routes, guarded by the lockout and the Origin check."""

    def __init__(self, access: Access, store: Store) -> None:
        self._access = access
        self._store = store

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/pair", self.page)
        router.add_post("/pair", self.submit)
        router.add_get("/pair/ca.pem", self.ca_certificate)

    async def page(self, request: web.Request) -> web.Response:
        tls = self._access.tls
        text = _page(request.query.get("code", ""), tls.fingerprint if tls is not None else None)
        return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def ca_certificate(self, request: web.Request) -> web.Response:
        tls = self._access.tls
        if tls is None:
            raise web.HTTPNotFound(text="this daemon has no LAN certificate (start it with --lan)")
        return web.Response(
            body=tls.pin_pem,
            content_type="application/x-x509-ca-cert",
            headers={"Content-Disposition": 'attachment; filename="shadow-cauldron-ca.pem"'},
        )

    async def submit(self, request: web.Request) -> web.StreamResponse:
        """POST /pair (JSON or form: code, device_name) → a device token; browsers also get the cookie."""
        access = self._access
        origin = request.headers.get("Origin")
        # A form posted from a foreign page is refused outright; the CLI sends no Origin.
        if origin is not None and not same_origin(origin, request.scheme, request.host):
            raise web.HTTPForbidden(text="cross-origin pairing is refused")
        address = request.remote or "?"
        wait = access.limiter.locked_for(address)
        if wait > 0:
            raise web.HTTPTooManyRequests(
                text=f"too many wrong codes from {address}; try again in {int(wait) + 1} s",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        wants_json = request.content_type == "application/json"
        body: dict[str, Any]
        try:
            body = dict(await request.json()) if wants_json else dict(await request.post())
        except (ValueError, TypeError):
            raise web.HTTPBadRequest(text="send JSON or a form with code and device_name") from None
        code = str(body.get("code", ""))
        name = " ".join(str(body.get("device_name", "")).split())[:MAX_DEVICE_NAME] or "device"
        if not access.pairing.redeem(code):
            access.limiter.fail(address)
            log.warning("wrong or expired pairing code from %s", address)
            raise web.HTTPForbidden(text="wrong, expired or already used pairing code")
        token, token_id = await pair_device(self._store, name)
        log.info("paired device %r (token id %d) from %s", name, token_id, address)
        response: web.StreamResponse
        if wants_json:
            response = web.json_response({"token": token, "token_id": token_id, "name": name})
        else:
            response = web.Response(
                text="<!doctype html><title>Paired</title><p>This browser is paired. <a href='/'>Open the app</a>.",
                content_type="text/html",
            )
        # The cookie is the browser's credential: HttpOnly keeps it from scripts, SameSite=Strict from other sites.
        response.set_cookie(
            COOKIE_NAME, token, max_age=COOKIE_MAX_AGE_S, path="/", secure=True, httponly=True, samesite="Strict"
        )
        response.headers["Cache-Control"] = "no-store"
        return response
