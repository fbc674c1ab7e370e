"""The daemon's lifecycle: start store → plugins → engine → web, stop in reverse.

On SIGTERM/SIGINT it stops taking work, stops the running batch at its next step, puts its jobs back as queued,
commits and returns, well within the 10 s a service manager allows.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field

from aiohttp import web

from cauldrond.config import Settings
from cauldrond.engine import Engine
from cauldrond.events import EventBus
from cauldrond.experiments.results import ResultsService
from cauldrond.experiments.service import ExperimentService
from cauldrond.plugins.manager import get_plugin_manager
from cauldrond.providers.registry import ProviderRegistry
from cauldrond.queue import JobQueue, QueuedJob
from cauldrond.rpc.methods import register_builtin_methods
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.services import Services
from cauldrond.store import Store
from cauldrond.store.recovery import recover
from cauldrond.web.app import build_app
from cauldrond.web.auth import ensure_token

log = logging.getLogger(__name__)


@dataclass
class Daemon:
    settings: Settings
    services: Services | None = None
    _runner: web.AppRunner | None = None
    _stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    bound_port: int | None = None

    async def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings.images_dir.mkdir(parents=True, exist_ok=True)
        settings.renders_dir.mkdir(parents=True, exist_ok=True)
        token = ensure_token(settings.token_path)

        # 1. store, and the recovery that must happen before anything is served
        store = await Store.open(settings.database_path)
        try:
            report = await recover(store, settings.images_dir, settings.max_attempts)
            # 2. plugins
            plugins = get_plugin_manager()
            providers = ProviderRegistry.from_plugins(plugins, settings)
            # 3. queue (rebuilt from SQLite) and engine
            queue = JobQueue()
            for row in await store.queued_jobs():
                queue.add(QueuedJob(row.job_id, row.experiment_id, row.idx, row.params), row.priority)
            events = EventBus()
            engine = Engine(
                store=store,
                queue=queue,
                events=events,
                providers=providers,
                images_dir=settings.images_dir,
                max_batch_size=settings.max_batch_size,
            )
            await engine.start()
        except BaseException:
            await store.close()
            raise
        methods = MethodRegistry()
        register_builtin_methods(methods)
        self.services = Services(
            settings=settings,
            token=token,
            store=store,
            plugins=plugins,
            providers=providers,
            queue=queue,
            events=events,
            engine=engine,
            experiments=ExperimentService(
                store=store,
                queue=queue,
                events=events,
                engine=engine,
                providers=providers,
                max_cells=settings.max_cells,
            ),
            methods=methods,
            results=ResultsService(store, settings.images_dir, settings.renders_dir),
            recovery=report.to_dict(),
            started_at=time.monotonic(),
        )
        plugins.hook.cauldron_startup(daemon=self)

        # 4. web
        self._runner = web.AppRunner(build_app(self.services), handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else settings.port
        log.info(
            "cauldrond serving on http://%s:%s (data dir %s, %d job(s) queued)",
            settings.host,
            self.bound_port,
            settings.data_dir,
            len(queue),
        )

    async def stop(self) -> None:
        services = self.services
        if services is None:
            return
        services.queue.pause()  # stop taking work first
        if self._runner is not None:
            await self._runner.cleanup()
        await services.engine.stop()
        services.plugins.hook.cauldron_shutdown(daemon=self)
        await services.store.close()
        self.services = None
        log.info("cauldrond stopped")

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        try:
            await self._stop_requested.wait()
            log.info("stop requested")
        finally:
            await self.stop()
