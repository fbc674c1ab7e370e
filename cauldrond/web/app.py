"""The aiohttp application: routes, the guard-and-auth middleware, and the WebSocket entry to RPC."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from cauldrond.a1111 import PREFIX as A1111_PREFIX
from cauldrond.a1111.auth import a1111_guard
from cauldrond.a1111.routes import add_a1111_routes
from cauldrond.media.trash import png_path
from cauldrond.metrics import LiveSources
from cauldrond.rpc.connection import RpcConnection
from cauldrond.rpc.limits import RpcLimits
from cauldrond.rpc.protocol import MAX_FRAME_BYTES
from cauldrond.services import Services
from cauldrond.web.access import ACCESS, Access
from cauldrond.web.app_shell import OPEN_SHELL_ROUTES, add_shell_routes
from cauldrond.web.auth import Credential
from cauldrond.web.guards import same_origin
from cauldrond.web.pairing import PairingRoutes
from cauldrond.web.sign_in import SignInRoutes
from cauldrond.web.thumbs import ThumbnailRoute

log = logging.getLogger(__name__)

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
CREDENTIAL: web.RequestKey[Credential] = web.RequestKey("credential", Credential)  # aiohttp >= 3.13
RPC_LIMITS: web.AppKey[RpcLimits] = web.AppKey("rpc_limits", RpcLimits)
# Routes anyone who reaches the daemon by one of its own names may read: the app shell, the health check,
# the pairing page with its CA download, a one-time sign-in link and whether this browser is signed in (those
# check what they are given themselves: web/pairing.py, web/sign_in.py). Everything else needs the local token
# or a device token. Matched by the route's canonical name (its pattern), so an open pattern opens exactly the
# paths it admits.
OPEN_ROUTES = frozenset({"/healthz", "/pair", "/pair/ca.pem", "/login", "/session"}) | OPEN_SHELL_ROUTES
SAFE_METHODS = frozenset({"GET", "HEAD"})


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _is_open(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical in OPEN_ROUTES


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app[ACCESS]
    if not access.hosts.allows(request.headers.get(hdrs.HOST)):
        # DNS rebinding: a foreign name that resolves to us is not one of our names.
        raise web.HTTPMisdirectedRequest(text="this daemon does not answer to that host name")
    if request.path.startswith(A1111_PREFIX):
        # A1111 clients authenticate with HTTP Basic and read errors in A1111's shape (cauldrond/a1111/auth.py).
        return await a1111_guard(request, handler, access.authenticator, request.app[SERVICES].settings)
    if not _is_open(request):
        credential = await access.authenticator.authenticate(request)
        if credential is None:
            raise web.HTTPUnauthorized(
                text="missing or wrong token: send 'Authorization: Bearer <token>' or pair at /pair",
                headers={"WWW-Authenticate": 'Bearer realm="cauldrond"'},
            )
        if credential.via == "cookie":
            _check_cookie_origin(request)
        request[CREDENTIAL] = credential
    response: web.StreamResponse = await handler(request)
    return response


def _check_cookie_origin(request: web.Request) -> None:
    """A browser sends the cookie whatever page asked; only our own pages may use it to act or to connect."""
    origin = request.headers.get(hdrs.ORIGIN)
    strict = _is_upgrade(request) or request.method not in SAFE_METHODS
    if origin is None and not strict:
        return  # a plain <img> GET sends no Origin; SameSite=Strict already kept other sites' requests out
    if not same_origin(origin, request.scheme, request.host):
        raise web.HTTPForbidden(text="a cookie is accepted only from the daemon's own origin")


async def rpc_socket(request: web.Request) -> web.WebSocketResponse:
    services = request.app[SERVICES]
    access = request.app[ACCESS]
    credential = request[CREDENTIAL]
    limits = request.app[RPC_LIMITS]
    # Refused before the upgrade, so a client sees a plain status it can report (and retry later).
    if not limits.try_open():
        raise web.HTTPServiceUnavailable(
            text=f"too many open connections (max_connections = {limits.max_connections}); try again later",
            headers={"Retry-After": "5"},
        )
    connection: RpcConnection | None = None
    try:
        # max_msg_size makes aiohttp close an oversized frame with 1009 before it is buffered whole.
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30, compress=False)
        await ws.prepare(request)
        connection = RpcConnection(services, ws, peer=request.remote or "?", limits=limits, credential=credential)
        limits.attach(connection)
        access.connections.add(ws, credential)
        try:
            await connection.serve()
        finally:
            access.connections.remove(ws)
    finally:
        limits.closed(connection)
    return ws


async def image_file(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    # The route pattern admits digits only; the path on disk comes from the store, never from the request.
    image_id = int(request.match_info["image_id"])
    row = await services.store.images.get(image_id)
    if row is None:
        raise web.HTTPNotFound(text=f"no image {image_id}")
    # A trashed image is still served, from the trash (media/trash.py), until the trash is emptied.
    path = png_path(services.settings.images_dir, row.path, trashed=row.deleted_at is not None)
    if path is None or not path.is_file():
        raise web.HTTPNotFound(text=f"image {image_id} is missing on disk")
    return web.FileResponse(
        path, headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=31536000, immutable"}
    )


async def render_file(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    # Names are hex digests made by ResultsService; the route admits nothing else.
    path = services.results.render_path(request.match_info["name"])
    if not path.is_file():
        raise web.HTTPNotFound(text="no such grid or plot")
    return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=3600"})


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    engine = services.engine
    checks = {
        "store": services.store.is_open,
        # The task itself, not a flag set at start: an engine that died is reported dead.
        "engine": engine.ready and engine.alive,
        "provider": bool(services.providers),
    }
    healthy = all(checks.values())
    # A storage pause is reported but stays 200: the daemon is up and answering, and restarting it (what a
    # supervisor does on non-200) frees no disk space. The reason names no paths: this route is open.
    details: dict[str, Any] = {
        "paused": services.queue.paused or engine.storage.guard.paused,
        "paused_reason": engine.storage.guard.reason,
        "engine_died": engine.failure is not None,  # the why is in system.info and the log
        "engine_restarts": engine.restarts,
    }
    scaleout = engine.scaleout_status()
    if scaleout is not None:
        # Stays 200 when the Ray cluster is unreachable: the daemon keeps the queue and resumes by itself.
        workers = [worker for worker in scaleout["workers"] if worker["state"] == "ready"]
        details["ray"] = {"connected": scaleout["connected"], "workers_ready": len(workers)}
    return web.json_response({"ok": healthy, **checks, **details}, status=200 if healthy else 503)


async def metrics_page(request: web.Request) -> web.Response:
    """Prometheus scrapes this with the token (docs/operations.md)."""
    services = request.app[SERVICES]
    limits = request.app[RPC_LIMITS]
    sources = LiveSources(open_connections=limits.open_connections, rpc_in_flight=limits.in_flight)
    body = services.metrics.exposition(services, sources)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def build_app(services: Services, access: Access | None = None) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_FRAME_BYTES)
    app[SERVICES] = services
    app[ACCESS] = access if access is not None else services.access
    # One budget for the application, which serves both the loopback and the LAN listener.
    app[RPC_LIMITS] = RpcLimits(
        max_connections=services.settings.max_connections, max_in_flight_total=services.settings.max_rpc_in_flight
    )
    add_shell_routes(app.router)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/rpc", rpc_socket)
    app.router.add_get(r"/images/{image_id:\d{1,18}}.png", image_file)
    app.router.add_get(r"/grids/{name:[0-9a-f]{32}}.png", render_file)
    ThumbnailRoute(services).add_to(app)
    PairingRoutes(app[ACCESS], services.store).add_to(app.router)
    SignInRoutes(app[ACCESS], services.store).add_to(app.router)
    add_a1111_routes(app, services)
    return app
