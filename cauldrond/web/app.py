"""The aiohttp application: routes, the auth middleware, and the WebSocket entry to RPC."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from cauldrond.rpc.connection import RpcConnection
from cauldrond.rpc.protocol import MAX_FRAME_BYTES
from cauldrond.services import Services
from cauldrond.web.auth import bearer_token, token_matches

log = logging.getLogger(__name__)

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
# Routes anyone on the allowed interface may read: the app shell and the health check. Everything else needs
# the token.
OPEN_ROUTES = frozenset({"/", "/healthz", "/manifest.webmanifest"})
PWA_DIR = Path(__file__).resolve().parents[2] / "pwa"
FALLBACK_PAGE = "<!doctype html><title>Shadow Cauldron</title><p>cauldrond is running. Use cauldronctl.</p>"


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in OPEN_ROUTES:
        services = request.app[SERVICES]
        if not token_matches(bearer_token(request), services.token):
            raise web.HTTPUnauthorized(
                text="missing or wrong token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="cauldrond"'},
            )
    response: web.StreamResponse = await handler(request)
    return response


async def rpc_socket(request: web.Request) -> web.WebSocketResponse:
    services = request.app[SERVICES]
    # max_msg_size makes aiohttp close an oversized frame with 1009 before it is buffered whole.
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30, compress=False)
    await ws.prepare(request)
    connection = RpcConnection(services, ws, peer=request.remote or "?")
    await connection.serve()
    return ws


async def image_file(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    # The route pattern admits digits only; the path on disk comes from the store, never from the request.
    image_id = int(request.match_info["image_id"])
    row = await services.store.get_image(image_id)
    if row is None:
        raise web.HTTPNotFound(text=f"no image {image_id}")
    path = services.settings.images_dir / row.path
    if not path.is_file():
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
    checks = {
        "store": services.store.is_open,
        "engine": services.engine.ready,
        "provider": bool(services.providers),
    }
    healthy = all(checks.values())
    return web.json_response({"ok": healthy, **checks}, status=200 if healthy else 503)


async def index(request: web.Request) -> web.StreamResponse:
    page = PWA_DIR / "index.html"
    if page.is_file():
        return web.FileResponse(page)
    return web.Response(text=FALLBACK_PAGE, content_type="text/html")


async def manifest(request: web.Request) -> web.StreamResponse:
    file = PWA_DIR / "manifest.webmanifest"
    if not file.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(file, headers={"Content-Type": "application/manifest+json"})


def build_app(services: Services) -> web.Application:
    app = web.Application(middlewares=[require_token], client_max_size=MAX_FRAME_BYTES)
    app[SERVICES] = services
    app.router.add_get("/", index)
    app.router.add_get("/manifest.webmanifest", manifest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/rpc", rpc_socket)
    app.router.add_get(r"/images/{image_id:\d{1,18}}.png", image_file)
    app.router.add_get(r"/grids/{name:[0-9a-f]{32}}.png", render_file)
    return app
