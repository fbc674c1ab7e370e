"""Who may call the A1111 API, and on which listener.

A1111 clients authenticate with HTTP Basic (``--api-auth user:password``): any user name is accepted and the
password is the local token or a paired device's token. A Bearer header works too. The pairing cookie does not:
these routes are for programs, and a cookie would let any page the owner's browser opens act on them.

The API answers on loopback unless ``a1111_api = "off"``; on the LAN listener only with ``a1111_api_lan = true``
(the LAN listener is the one that speaks TLS)."""

from __future__ import annotations

import binascii
import ipaddress
from base64 import b64decode

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from cauldrond.a1111.errors import A1111Error, unauthorized
from cauldrond.config import Settings
from cauldrond.web.auth import Authenticator, Credential

MAX_HEADER_CHARS = 1024  # a token is 43 characters; a longer header is not ours
# Who called: the routes redact the daemon's paths for a paired device, as the RPC does (rpc/redaction.py).
A1111_CREDENTIAL: web.RequestKey[Credential] = web.RequestKey("a1111_credential", Credential)


def presented_token(request: web.BaseRequest) -> str | None:
    """The password of an HTTP Basic header, or the token of a Bearer header."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if len(header) > MAX_HEADER_CHARS:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon and password else None


async def authenticate(authenticator: Authenticator, request: web.BaseRequest) -> Credential | None:
    # "bearer": presented in a header by a program, never by a browser's cookie jar.
    return await authenticator.check(presented_token(request), "bearer")


def on_lan_listener(request: web.BaseRequest) -> bool:
    """The request came in on the LAN listener (TLS), or on a plain listener bound to a non-loopback address."""
    transport = request.transport
    if transport is None:
        return True  # gone already; deny rather than guess
    if transport.get_extra_info("sslcontext") is not None:
        return True
    sockname = transport.get_extra_info("sockname")
    host = sockname[0] if isinstance(sockname, tuple) and sockname else ""
    try:
        return not ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return True  # a Unix socket or something unknown: not loopback as far as we know


def enabled_for(request: web.BaseRequest, settings: Settings) -> bool:
    if settings.a1111_api == "off":
        return False
    return settings.a1111_api_lan or not on_lan_listener(request)


async def a1111_guard(
    request: web.Request, handler: Handler, authenticator: Authenticator, settings: Settings
) -> web.StreamResponse:
    """Credentials first (nothing about the API is told to a stranger), then whether it is on here."""
    credential = await authenticate(authenticator, request)
    if credential is None:
        return unauthorized()
    if not enabled_for(request, settings):
        where = "everywhere (a1111_api = off)" if settings.a1111_api == "off" else "on the LAN (a1111_api_lan)"
        return A1111Error(404, f"the A1111-compatible API is off {where}; see docs/a1111-api.md").response()
    request[A1111_CREDENTIAL] = credential
    return await handler(request)
