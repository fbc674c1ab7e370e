"""A real HTTP server on loopback that speaks Ollama's /api/chat and OpenAI's /v1/chat/completions, with
switchable failure modes. It records every request it receives and how many it served at once."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

GOOD_ANSWER: dict[str, Any] = {
    "description": "A red lighthouse on a rocky coast at dusk.",
    "tags": ["Lighthouse", "coast", "dusk", "red", "coast"],
    "quality": 7,
}


@dataclass
class Received:
    backend: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeLLM:
    """``mode`` applies to every request; ``script`` (consumed first, one entry per request) overrides it.

    Modes: ok, status:<code>, html, html:<code>, body-not-json, huge-declared, huge-streamed, slow, hold, drop,
    redirect. In ``ok`` the model's message content is ``content`` if set, else ``answer`` encoded as JSON. In
    ``hold`` no reply is sent until the test sets ``released``: a client that gives up did so by its own timeout."""

    mode: str = "ok"
    script: list[str] = field(default_factory=list)
    answer: Any = field(default_factory=lambda: dict(GOOD_ANSWER))
    content: str | None = None
    delay: float = 0.0
    slow_seconds: float = 2.0
    released: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    streamed_bytes: int = 0
    url: str = ""

    @property
    def attempts(self) -> int:
        return len(self.received)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/api/chat", self._ollama)
        app.router.add_post("/v1/chat/completions", self._openai)
        return app

    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "ollama")

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "openai")

    def _envelope(self, backend: str) -> dict[str, Any]:
        text = self.content if self.content is not None else json.dumps(self.answer)
        if backend == "ollama":
            return {"model": "m", "message": {"role": "assistant", "content": text}, "done": True}
        return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": text}}]}

    async def _handle(self, request: web.Request, backend: str) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            self.received.append(Received(backend, request.path, dict(request.headers), body))
            mode = self.script.pop(0) if self.script else self.mode
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._respond(request, backend, mode)
        finally:
            self.in_flight -= 1

    async def _respond(self, request: web.Request, backend: str, mode: str) -> web.StreamResponse:
        if mode == "ok":
            return web.json_response(self._envelope(backend))
        if mode.startswith("status:"):
            status = int(mode.split(":", 1)[1])
            # Retry-After 0 keeps the 429 test fast while still exercising the header.
            headers = {"Retry-After": "0"} if status == 429 else {}
            hostile = "rate limited\x1b[2J\u202e" + "x" * 500
            error: dict[str, Any] = {"error": {"message": hostile}} if status == 429 else {"error": "boom"}
            return web.json_response(error, status=status, headers=headers)
        if mode.startswith("html"):
            status = int(mode.split(":", 1)[1]) if ":" in mode else 200
            page = "<html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>"
            return web.Response(text=page, status=status, content_type="text/html")
        if mode == "body-not-json":
            return web.Response(text="definitely not json", content_type="application/json")
        if mode == "huge-declared":
            return web.Response(body=b" " * (2 * 1024 * 1024), content_type="application/json")
        if mode == "huge-streamed":
            return await self._stream_forever(request)
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
            return web.json_response(self._envelope(backend))
        if mode == "hold":
            await self.released.wait()
            return web.json_response(self._envelope(backend))
        if mode == "drop":
            # Promise a body, send a little of it, then hang up.
            response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "1000"})
            await response.prepare(request)
            await response.write(b'{"message": ')
            assert request.transport is not None
            request.transport.close()
            return response
        if mode == "redirect":
            raise web.HTTPFound(location="http://127.0.0.1:9/elsewhere")
        raise AssertionError(f"unknown mode {mode}")

    async def _stream_forever(self, request: web.Request) -> web.StreamResponse:
        # Chunked, no Content-Length: the client must count as it reads. Bounded at 64 MiB so a broken client
        # fails the test instead of hanging it.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b'{"pad": "' + b"a" * 65536
        try:
            while self.streamed_bytes < 64 * 1024 * 1024:
                await response.write(chunk)
                self.streamed_bytes += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response


async def start_fake(fake: FakeLLM) -> TestServer:
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    return server
