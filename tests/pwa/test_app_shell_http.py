"""The app shell over plain HTTP (no browser): its CSP, what it serves and refuses, caching and compression, and
that the vendored libraries are exactly what scripts/vendor_pwa.py recorded."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import aiohttp

from cauldrond.daemon import Daemon
from tests.conftest import url_of

PWA = Path(__file__).resolve().parents[2] / "pwa"
# Static `from "x"`, side-effect `import "x"` and dynamic `import("x")`; not JSDoc's `{import('x').Type}`.
IMPORT = re.compile(r"""(?:\bfrom\s*|(?<!\{)\bimport\s*\(?\s*)["']([^"']+)["']""")


def without_comments(source: str) -> str:
    """Whole-line // comments and /* */ blocks removed: prose in them ("from 'run again'") is not an import."""
    return re.sub(r"(?m)^\s*//.*$", "", re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL))


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


class InlineCode(HTMLParser):
    """Collects what a strict CSP would block in a page: inline scripts, inline styles, event-handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style" or "style" in names:
            self.found.append(f"inline style on <{tag}>")
        self.found += [f"handler {name} on <{tag}>" for name in names if name.startswith("on")]
        self._in_script = tag == "script" and "src" not in names and dict(attrs).get("type") != "importmap"
        if tag == "script" and dict(attrs).get("type") == "importmap":
            self.found.append("inline import map")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline script")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


async def test_the_shell_carries_a_strict_csp(daemon: Daemon) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/gallery", "/experiments/7", "/app/js/main.js", "/sw.js", "/manifest.webmanifest"):
            reply = await session.get(url_of(daemon) + path)
            if reply.status == 404 and path == "/sw.js" and not (PWA / "sw.js").exists():
                continue
            assert reply.status == 200, path
            policy = directives(reply.headers["Content-Security-Policy"])
            assert policy["script-src"] == ["'self'"], path
            assert policy["connect-src"] == ["'self'"], path
            assert policy["object-src"] == ["'none'"], path
            assert not any("unsafe" in value for values in policy.values() for value in values), path
            assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_no_page_of_the_app_has_inline_code_or_eval() -> None:
    for page in PWA.rglob("*.html"):
        parser = InlineCode()
        parser.feed(page.read_text(encoding="utf-8"))
        assert not parser.found, (page, parser.found)
    for module in (PWA / "js").rglob("*.js"):
        text = module.read_text(encoding="utf-8")
        assert not re.search(r"\beval\s*\(|new\s+Function\s*\(", text), module
        assert "innerHTML" not in text, f"{module}: build DOM through the view library, not HTML strings"


def test_every_import_in_the_app_resolves_to_a_served_file() -> None:
    """No bare specifiers (they would need an import map) and no import of a file that is not there."""
    for module in [*(PWA / "js").rglob("*.js"), *(PWA / "vendor").rglob("*.mjs")]:
        for target in IMPORT.findall(without_comments(module.read_text(encoding="utf-8"))):
            assert target.startswith((".", "/")), f"{module}: bare import {target!r}"
            resolved = (PWA / target.removeprefix("/app/")) if target.startswith("/") else module.parent / target
            assert resolved.resolve().is_file(), f"{module}: {target!r} does not exist"


def test_vendored_files_are_exactly_what_the_vendor_script_recorded() -> None:
    record = json.loads((PWA / "vendor" / "VENDOR.json").read_text(encoding="utf-8"))
    names = {package["name"] for package in record}
    assert {"preact", "htm", "@msgpack/msgpack"} <= names
    recorded: set[str] = set()
    for package in record:
        assert re.fullmatch(r"\d+\.\d+\.\d+", package["version"]), package
        assert package["integrity"].startswith("sha512-"), package
        for name, digest in package["files"].items():
            recorded.add(name)
            assert hashlib.sha256((PWA / "vendor" / name).read_bytes()).hexdigest() == digest, name
    on_disk = {p.relative_to(PWA / "vendor").as_posix() for p in (PWA / "vendor").rglob("*") if p.is_file()}
    assert on_disk - {"VENDOR.json"} == recorded, "a vendored file is not in VENDOR.json, or the reverse"


async def test_files_outside_the_app_or_of_other_types_are_not_served(daemon: Daemon) -> None:
    async with aiohttp.ClientSession() as session:
        for path in (
            "/app/../cauldrond/config.py",
            "/app/..%2Fcauldrond%2Fconfig.py",
            "/app/js/../../pyproject.toml",
            "/app/index.html",
            "/app/nope.js",
            "/app/vendor/licenses/../../../README.md",
        ):
            reply = await session.get(url_of(daemon) + path)
            assert reply.status in (401, 404), (path, reply.status)
            assert "[project]" not in await reply.text()


async def test_revalidation_and_compression(daemon: Daemon) -> None:
    main = (PWA / "js" / "main.js").read_bytes()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        reply = await session.get(url_of(daemon) + "/app/js/main.js", headers={"Accept-Encoding": "gzip"})
        assert reply.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await reply.read()) == main
        assert reply.headers["Cache-Control"] == "no-cache"
        again = await session.get(url_of(daemon) + "/app/js/main.js", headers={"If-None-Match": reply.headers["ETag"]})
        assert again.status == 304 and await again.read() == b""


async def test_shell_json_lists_every_file_the_offline_shell_needs(daemon: Daemon) -> None:
    async with aiohttp.ClientSession() as session:
        described = await (await session.get(url_of(daemon) + "/shell.json")).json()
        assert re.fullmatch(r"[0-9a-f]{16}", described["version"])
        assert {"/", "/app/js/main.js", "/app/css/app.css", "/app/vendor/preact.mjs"} <= set(described["files"])
        for url in described["files"]:
            assert (await session.get(url_of(daemon) + url)).status == 200, url
