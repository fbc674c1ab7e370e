"""GET /login (a one-time sign-in link for a browser on the daemon's own machine) and GET /session (whether this
browser is signed in, for the app's first screen). Both are open routes; docs/lan.md describes them.

A sign-in link works like a pairing code (single use, short-lived, in memory only, the same lockout per
address) and ends the same way: a new device token, named "browser on <host>", set as the pairing cookie.
"""

from __future__ import annotations

import html
import logging
import socket
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cauldrond.web.auth import bearer_token, cookie_token
from cauldrond.web.guards import same_origin
from cauldrond.web.pairing import lockout_message, lockout_seconds, pair_device, set_device_cookie

if TYPE_CHECKING:
    from cauldrond.store import Store
    from cauldrond.web.access import Access

log = logging.getLogger(__name__)

LOGIN_REFUSALS = {
    "wrong": "This sign-in link is not valid. Run cauldronctl open again.",
    "expired": "This sign-in link has expired (links last a minute). Run cauldronctl open again.",
    "used": "This sign-in link was already used (each link works once). Run cauldronctl open again.",
}
MESSAGE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} - Shadow Cauldron</title></head>
<body><h1>{title}</h1><p>{message}</p></body></html>"""
# The code is in the URL: no page it leads to may learn it from a Referer header.
# A link opened by the user (typed, or handed to the browser by `cauldronctl open`) is "none"; one a page made
# the browser request is "cross-site"/"same-site". Such requests are refused before the lockout counts them, so
# a site the owner visits cannot lock this machine out by requesting /login?code=WRONG (browsers that send no
# Sec-Fetch-Site fall back to the lockout alone).
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
LOGIN_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def login_device_name() -> str:
    return f"browser on {socket.gethostname()}"


def message_page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    text = MESSAGE_PAGE.format(title=html.escape(title), message=html.escape(message))
    return web.Response(
        text=text, status=status, content_type="text/html", headers={**LOGIN_HEADERS, **(headers or {})}
    )


class SignInRoutes:
    def __init__(self, access: Access, store: Store) -> None:
        self._access = access
        self._store = store

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/login", self.login)
        router.add_get("/session", self.session)

    async def login(self, request: web.Request) -> web.Response:
        """Redeem ``?code=``: a device token and its cookie, then 303 to the app. Refusals create nothing."""
        access = self._access
        if request.headers.get("Sec-Fetch-Site", "").lower() in FOREIGN_FETCH_SITES:
            return message_page(403, "Not signed in", "Open the sign-in link directly, not from another site.")
        address = request.remote or "?"
        wait = lockout_seconds(access, address)
        if wait:
            return message_page(429, "Try again later", lockout_message(wait), {"Retry-After": str(wait)})
        outcome = access.logins.redeem(request.query.get("code", ""))
        if outcome != "ok":
            access.limiter.fail(address)
            log.warning("refused a sign-in link from %s (%s)", address, outcome)
            return message_page(403, "Not signed in", LOGIN_REFUSALS[outcome])
        name = login_device_name()
        token, token_id = await pair_device(self._store, name)
        log.info("signed in %r (token id %d) from %s with a one-time link", name, token_id, address)
        response = web.Response(status=303, headers={**LOGIN_HEADERS, "Location": "/"})
        set_device_cookie(response, token)
        return response

    async def session(self, request: web.Request) -> web.Response:
        """Who this browser is, and what the pair screen needs; nothing else (this route is open)."""
        access = self._access
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, request.scheme, request.host):
            raise web.HTTPForbidden(text="a session is reported only to the daemon's own origin")
        credential = await access.authenticator.authenticate(request)
        presented = bearer_token(request) or cookie_token(request)
        signed_out = credential is None and presented is not None and await access.authenticator.was_revoked(presented)
        tls = access.tls
        body: dict[str, Any] = {
            "signed_in": credential is not None,
            "kind": credential.kind if credential is not None else None,
            "device_name": credential.name if credential is not None and credential.kind == "device" else None,
            "signed_out": signed_out,
            "lan": tls is not None,
            "fingerprint": tls.fingerprint if tls is not None else None,
            "pair_url": access.pair_url,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})
