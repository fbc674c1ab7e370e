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

from cauldrond.config import Settings
from cauldrond.engine.previews import PreviewService
from cauldrond.events import EventBus
from cauldrond.experiments.results import ResultsService
from cauldrond.experiments.service import ExperimentService
from cauldrond.logging_setup import log_job_event
from cauldrond.metrics import DaemonMetrics
from cauldrond.models.hash_cache import StoreExtraHashCache, StoreHashCache
from cauldrond.notify import notify
from cauldrond.plugins.postprocess import PostProcessRunner
from cauldrond.plugins.runtime import PluginSource, load_plugins
from cauldrond.queue import JobQueue, queued_job
from cauldrond.rpc.methods import register_builtin_methods
from cauldrond.rpc.methods.plugins import register_plugin_methods
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.scaleout import make_engine
from cauldrond.security.files import make_private_database, make_private_dir
from cauldrond.services import Services
from cauldrond.store import Store
from cauldrond.store.recovery import announce, recover
from cauldrond.web.access import Access
from cauldrond.web.auth import ensure_token
from cauldrond.web.frontend import WebFrontend

log = logging.getLogger(__name__)


@dataclass
class Daemon:
    settings: Settings
    services: Services | None = None
    frontend: WebFrontend | None = None
    _stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    bound_port: int | None = None
    abandoned_work: bool = False  # set by stop(): see Engine.abandoned_work
    # Plugin objects loaded after the installed entry points (tests register plugins this way).
    extra_plugins: tuple[PluginSource, ...] = ()

    async def start(self) -> None:
        settings = self.settings
        # 0700 even when another command (models create-tiny) made the folder first; the database 0600.
        make_private_dir(settings.data_dir)
        make_private_database(settings.database_path)
        settings.images_dir.mkdir(parents=True, exist_ok=True)
        settings.renders_dir.mkdir(parents=True, exist_ok=True)
        token = ensure_token(settings.token_path)

        # 1. store, and the recovery that must happen before anything is served
        store = await Store.open(settings.database_path)
        try:
            report = await recover(store, settings.images_dir, settings.max_attempts, settings.crash_backoff_s)
            # 2. plugins, one by one: a plugin that fails is skipped and listed as failed
            methods = MethodRegistry()
            register_builtin_methods(methods)
            runtime = await load_plugins(settings, reserved_methods=methods.names(), extra_plugins=self.extra_plugins)
            register_plugin_methods(methods, runtime)
            providers = runtime.providers
            hash_cache = StoreHashCache(store.model_hashes, asyncio.get_running_loop())
            extra_hash_cache = StoreExtraHashCache(store.extra_network_hashes, asyncio.get_running_loop())
            for provider in providers.all():
                use_hash_cache = getattr(provider, "use_hash_cache", None)
                if callable(use_hash_cache):  # providers with model files remember their hashes in the store
                    use_hash_cache(hash_cache)
                use_extra_hash_cache = getattr(provider, "use_extra_hash_cache", None)
                if callable(use_extra_hash_cache):  # and those with LoRA, VAE and embedding files theirs
                    use_extra_hash_cache(extra_hash_cache)
            postprocess = PostProcessRunner(
                runtime,
                store,
                settings.images_dir,
                concurrency=settings.postprocess_concurrency,
                timeout_s=settings.postprocess_timeout_s,
            )
            # 3. queue (rebuilt from SQLite) and engine
            queue = JobQueue()
            for row in await store.jobs.queued():
                queue.add(queued_job(row), row.priority)
            events = EventBus()
            metrics = DaemonMetrics()
            events.tap(metrics.observe_event)
            events.tap(log_job_event)
            await announce(report, store, events)
            previews = PreviewService(
                events, every_steps=settings.preview_every_steps, max_per_s=settings.preview_max_per_s
            )
            engine = make_engine(
                settings,
                store=store,
                queue=queue,
                events=events,
                providers=providers,
                images_dir=settings.images_dir,
                max_batch_size=settings.max_batch_size,
                # Measured per device; Ray's workers may each hold another GPU, so Ray keeps the fixed size.
                auto_batch_size=settings.auto_batch_size and settings.engine == "local",
                on_image=postprocess.submit,
                database_path=settings.database_path,
                min_free_disk_mb=settings.min_free_disk_mb,
                previews=previews,
            )
            await engine.start()
        except BaseException:
            await store.close()
            raise
        postprocess.start()
        self.services = Services(
            settings=settings,
            token=token,
            store=store,
            plugins=runtime.manager,
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
                default_model=settings.default_model,
            ),
            methods=methods,
            results=ResultsService(store, settings.images_dir, settings.renders_dir),
            previews=previews,
            access=Access.for_daemon(settings, token, store),
            recovery=report.to_dict(),
            started_at=time.monotonic(),
            plugin_runtime=runtime,
            postprocess=postprocess,
            metrics=metrics,
        )
        await runtime.startup(self)

        # 4. web: loopback HTTP, and with --lan the HTTPS listener, mDNS and pairing (web/frontend.py)
        self.frontend = WebFrontend(self.services)
        await self.frontend.start()
        self.bound_port = self.frontend.port
        log.info("cauldrond ready (data dir %s, %d job(s) queued)", settings.data_dir, len(queue))
        notify("READY=1")  # systemd Type=notify: `systemctl start` returns once we serve

    async def stop(self) -> None:
        services = self.services
        if services is None:
            return
        services.queue.pause()  # stop taking work first
        if self.frontend is not None:
            await self.frontend.stop()
            self.frontend = None
        # Heavy work (imports, grids, analyses) is dropped, not waited for: its threads die with the process.
        services.import_pool.close()
        services.maintenance_pool.close()  # a backup or verify in progress must not hold the process up
        services.results.close()
        await services.engine.stop()
        self.abandoned_work = services.engine.abandoned_work
        if services.postprocess is not None:
            await services.postprocess.stop()
        if services.plugin_runtime is not None:
            await services.plugin_runtime.shutdown(self)
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
