"""Pairing: one-time codes exchanged for per-device tokens, the /pair page, and its brute-force lockout.

A code is 8 characters from an alphabet without look-alikes (about 40 bits), lives 5 minutes, and works once.
Guessing is capped per client address: 5 wrong codes lock that address out for 15 minutes, correct code or not.
A refused code is told apart as wrong, expired or already used: codes that can no longer be redeemed are
remembered for an hour, so the answer only ever says that a dead code existed (docs/lan.md, "Pairing errors").
"""

from __future__ import annotations

import html
import io
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import qrcode  # type: ignore[import-untyped]  # pure Python, no stubs published
from aiohttp import web

from cauldrond.web.app_shell import file_response, shell_file
from cauldrond.web.auth import COOKIE_NAME, hash_token, new_device_token
from cauldrond.web.guards import same_origin

if TYPE_CHECKING:
    from cauldrond.store import Store
    from cauldrond.web.access import Access

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
CODE_LENGTH = 8
CODE_TTL_S = 300.0
# How long a used or expired code is still recognised as such (instead of "wrong"), and how many are kept.
REMEMBER_DEAD_S = 3600.0
MAX_REMEMBERED = 1000
MAX_FAILURES = 5
LOCKOUT_S = 900.0
MAX_DEVICE_NAME = 64
COOKIE_MAX_AGE_S = 400 * 86400  # the longest lifetime browsers accept

Redeemed = Literal["ok", "wrong", "expired", "used"]


def normalize_code(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


class PairingCodes:
    """Live codes, kept in memory only: a restart invalidates them, which is what a one-time code should do."""

    def __init__(
        self,
        ttl_s: float = CODE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        remember_s: float = REMEMBER_DEAD_S,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.remember_s = remember_s
        self._live: dict[str, float] = {}  # code -> expires at
        # Codes that can never be redeemed again -> (why, forget at); oldest first.
        self._dead: dict[str, tuple[Literal["expired", "used"], float]] = {}

    @property
    def remembered(self) -> int:
        """How many dead (used or expired) codes are kept to tell them apart from wrong ones."""
        return len(self._dead)

    def create(self) -> tuple[str, float]:
        """A new code and its lifetime in seconds."""
        self._expire()
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        self._dead.pop(code, None)
        self._live[code] = self.clock() + self.ttl_s
        return code, self.ttl_s

    def redeem(self, presented: str) -> Redeemed:
        """Whether ``presented`` is redeemed: "ok" once for a live code (used up by it), else why not."""
        self._expire()
        code = normalize_code(presented)
        if self._live.pop(code, None) is not None:
            self._bury(code, "used", self.clock() + self.remember_s)
            return "ok"
        dead = self._dead.get(code)
        return dead[0] if dead is not None else "wrong"

    def _expire(self) -> None:
        now = self.clock()
        for code, expires_at in [(c, t) for c, t in self._live.items() if t <= now]:
            del self._live[code]
            self._bury(code, "expired", expires_at + self.remember_s)
        for code in [c for c, (_why, forget_at) in self._dead.items() if forget_at <= now]:
            del self._dead[code]

    def _bury(self, code: str, why: Literal["expired", "used"], forget_at: float) -> None:
        self._dead[code] = (why, forget_at)
        while len(self._dead) > MAX_REMEMBERED:
            del self._dead[next(iter(self._dead))]


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

    def _recent(self, address: str) -> list[float]:
        now = self.clock()
        recent = [t for t in self._failures.get(address, []) if now - t < self.lockout_s]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return recent

    def locked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may)."""
        recent = self._recent(address)
        if len(recent) < self.max_failures:
            return 0.0
        return max(0.0, recent[-self.max_failures] + self.lockout_s - self.clock())

    def attempts_left(self, address: str) -> int:
        return max(0, self.max_failures - len(self._recent(address)))

    def fail(self, address: str) -> None:
        self._failures.setdefault(address, []).append(self.clock())
        if len(self._failures) > 10_000:  # bound memory against address-spraying
            oldest = min(self._failures, key=lambda a: self._failures[a][-1] if self._failures[a] else 0.0)
            del self._failures[oldest]


# What a refused code means to the person holding it: (error code, message). The app shows the message.
PAIR_REFUSALS: dict[str, tuple[str, str]] = {
    "wrong": ("code_wrong", "That is not a pairing code of this daemon. Check the code and try again."),
    "expired": (
        "code_expired",
        "That pairing code has expired (codes last 5 minutes). Ask for a new one: cauldronctl pair.",
    ),
    "used": (
        "code_used",
        "That pairing code was already used (each code pairs one device). Ask for a new one: cauldronctl pair.",
    ),
}


def lockout_seconds(access: Access, address: str) -> int:
    """Whole seconds ``address`` must wait before its next code (0: none)."""
    wait = access.limiter.locked_for(address)
    return int(wait) + 1 if wait > 0 else 0


def lockout_message(wait_s: int) -> str:
    return f"Too many wrong codes from this address; try again in {wait_s} s."


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


def set_device_cookie(response: web.StreamResponse, token: str) -> None:
    """The browser's credential. HttpOnly keeps it from scripts, SameSite=Strict from other sites' requests.
    Secure: browsers treat http://127.0.0.1 and http://localhost as secure origins and keep such a cookie there
    (checked in Chromium by tests/pwa/test_sign_in.py)."""
    response.set_cookie(
        COOKIE_NAME, token, max_age=COOKIE_MAX_AGE_S, path="/", secure=True, httponly=True, samesite="Strict"
    )
    response.headers["Cache-Control"] = "no-store"


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


def _refused(wants_json: bool, status: int, error: str, message: str, **extra: Any) -> web.Response:
    headers = {"Cache-Control": "no-store"}
    if "retry_after_s" in extra:
        headers["Retry-After"] = str(extra["retry_after_s"])
    if wants_json:
        return web.json_response({"error": error, "message": message, **extra}, status=status, headers=headers)
    return web.Response(text=message, status=status, headers=headers)


class PairingRoutes:
    """GET /pair, POST /pair and GET /pair/ca.pem; open routes, guarded by the lockout and the Origin check."""

    def __init__(self, access: Access, store: Store) -> None:
        self._access = access
        self._store = store

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/pair", self.page)
        router.add_post("/pair", self.submit)
        router.add_get("/pair/ca.pem", self.ca_certificate)

    async def page(self, request: web.Request) -> web.StreamResponse:
        # The app's own pair screen (pwa/js/screens/pair.js reads ?code= and ?fp=) when the app is installed;
        # this plain form otherwise.
        app_page = shell_file("index.html")
        if app_page is not None:
            return file_response(request, app_page)
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
        """POST /pair (JSON or form: code, device_name) → a device token; browsers also get the cookie.

        JSON requests get JSON refusals ``{"error", "message", ...}`` (docs/lan.md lists them); forms get text."""
        access = self._access
        wants_json = request.content_type == "application/json"
        origin = request.headers.get("Origin")
        # A form posted from a foreign page is refused outright; the CLI sends no Origin.
        if origin is not None and not same_origin(origin, request.scheme, request.host):
            return _refused(wants_json, 403, "cross_origin", "Cross-origin pairing is refused.")
        address = request.remote or "?"
        wait = lockout_seconds(access, address)
        if wait:
            return _refused(wants_json, 429, "locked_out", lockout_message(wait), retry_after_s=wait)
        body: dict[str, Any]
        try:
            body = dict(await request.json()) if wants_json else dict(await request.post())
        except (ValueError, TypeError):
            return _refused(wants_json, 400, "bad_request", "Send JSON or a form with code and device_name.")
        code = str(body.get("code", ""))
        name = " ".join(str(body.get("device_name", "")).split())[:MAX_DEVICE_NAME] or "device"
        outcome = access.pairing.redeem(code)
        if outcome != "ok":
            access.limiter.fail(address)
            log.warning("refused a pairing code from %s (%s)", address, outcome)
            error, message = PAIR_REFUSALS[outcome]
            return _refused(wants_json, 403, error, message, attempts_left=access.limiter.attempts_left(address))
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
        set_device_cookie(response, token)
        return response
