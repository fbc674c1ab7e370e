"""The web app's shell: the static files of pwa/, served at / with a strict Content-Security-Policy.

The shell is public (it holds no data: everything it shows comes over the authenticated RPC), so a phone can open
it, show the pair screen, and start offline from its service worker. Files are served only from an allow-list of
suffixes inside pwa/, never by a path that resolves outside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

PWA_DIR = Path(__file__).resolve().parents[2] / "pwa"
FALLBACK_PAGE = "<!doctype html><title>Shadow Cauldron</title><p>cauldrond is running. Use cauldronctl.</p>"

# No inline script or style, no eval; images may be blob: (previews decoded from RPC bytes) or data: (icons).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# The service worker decides what is cached offline; the HTTP cache must not keep a stale mix of versions.
REVALIDATE = {"Cache-Control": "no-cache"}

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# The app's own screens: a reload or a shared link on any of them gets the shell, whose router takes over.
SCREEN_ROUTES = ("/", "/new", "/gallery", "/experiments", r"/experiments/{experiment_id:\d{1,18}}", "/signed-out")
# Under /app/: the shell's modules, styles, vendored libraries and icons.
ASSET_ROUTE = r"/app/{path:[A-Za-z0-9_\-][A-Za-z0-9_\-./]{0,200}}"
# The same routes by their canonical names (as aiohttp reports them), which the auth guard checks.
OPEN_SHELL_ROUTES = frozenset(
    {
        "/",
        "/new",
        "/gallery",
        "/experiments",
        "/experiments/{experiment_id}",
        "/signed-out",
        "/app/{path}",
        "/sw.js",
        "/shell.json",
        "/manifest.webmanifest",
    }
)


def shell_file(relative: str) -> Path | None:
    """The file under pwa/ for ``relative``, or None when it is missing, outside pwa/ or not a served type."""
    if ".." in relative.split("/"):
        return None
    path = (PWA_DIR / relative).resolve()
    if not path.is_relative_to(PWA_DIR) or path.suffix not in CONTENT_TYPES or not path.is_file():
        return None
    return path


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int]  # mtime_ns and size: a changed file is read again
    body: bytes
    etag: str


_loaded: dict[Path, _Loaded] = {}


def _load(path: Path) -> _Loaded:
    """The file's bytes, kept in memory: the shell is a few hundred KB, read once per version."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _loaded.get(path)
    if cached is None or cached.stamp != stamp:
        body = path.read_bytes()
        cached = _Loaded(stamp, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        _loaded[path] = cached
    return cached


def file_response(request: web.Request, path: Path) -> web.StreamResponse:
    """The file with the CSP, revalidated by ETag (a phone re-downloads nothing unchanged), gzipped for clients
    that accept it (the shell's weight on a phone is what the budget in docs/benchmarks.md measures)."""
    loaded = _load(path)
    headers = {"Content-Type": CONTENT_TYPES[path.suffix], "ETag": loaded.etag, **REVALIDATE, **SECURITY_HEADERS}
    if loaded.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=loaded.body, headers=headers)
    if path.suffix != ".png":
        response.enable_compression()
    return response


def shell_files() -> list[str]:
    """Every file the offline shell needs, as URLs: the page, the modules, styles, vendored code and icons."""
    files = ["/"]
    for folder in ("js", "css", "vendor", "icons"):
        root = PWA_DIR / folder
        if root.is_dir():
            files += [
                "/app/" + path.relative_to(PWA_DIR).as_posix()
                for path in sorted(root.rglob("*"))
                if path.is_file() and path.suffix in CONTENT_TYPES and path.suffix != ".txt"
            ]
    return [*files, "/manifest.webmanifest"]


def shell_version() -> str:
    """A digest of every shell file's bytes: it changes exactly when a new version of the app is installed."""
    digest = hashlib.sha256()
    for url in shell_files():
        relative = "index.html" if url == "/" else url.removeprefix("/app/").lstrip("/")
        path = PWA_DIR / relative
        if path.is_file():
            digest.update(url.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


async def screen(request: web.Request) -> web.StreamResponse:
    page = shell_file("index.html")
    if page is None:
        return web.Response(text=FALLBACK_PAGE, content_type="text/html", headers=SECURITY_HEADERS)
    return file_response(request, page)


async def asset(request: web.Request) -> web.StreamResponse:
    path = shell_file(request.match_info["path"])
    if path is None or path.name == "index.html":
        raise web.HTTPNotFound(text="no such file in the app")
    return file_response(request, path)


async def service_worker(request: web.Request) -> web.StreamResponse:
    path = shell_file("sw.js")
    if path is None:
        raise web.HTTPNotFound(text="the app has no service worker")
    return file_response(request, path)


async def manifest(request: web.Request) -> web.StreamResponse:
    path = shell_file("manifest.webmanifest")
    if path is None:
        raise web.HTTPNotFound(text="the app has no manifest")
    return file_response(request, path)


async def shell_description(request: web.Request) -> web.Response:
    """What the service worker caches, and the version that names its cache."""
    body = {"version": shell_version(), "files": shell_files()}
    return web.Response(text=json.dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"})


def add_shell_routes(router: web.UrlDispatcher) -> None:
    for path in SCREEN_ROUTES:
        router.add_get(path, screen)
    router.add_get(ASSET_ROUTE, asset)
    router.add_get("/sw.js", service_worker)
    router.add_get("/shell.json", shell_description)
    router.add_get("/manifest.webmanifest", manifest)
