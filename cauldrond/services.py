"""The daemon's running parts, handed to RPC methods and web routes. Built by ``Daemon.start`` in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauldrond.metrics import DaemonMetrics
from cauldrond.work_pool import WorkPool

if TYPE_CHECKING:
    import pluggy

    from cauldrond.config import Settings
    from cauldrond.engine import Engine
    from cauldrond.engine.previews import PreviewService
    from cauldrond.events import EventBus
    from cauldrond.experiments.results import ResultsService
    from cauldrond.experiments.service import ExperimentService
    from cauldrond.plugins.postprocess import PostProcessRunner
    from cauldrond.plugins.runtime import PluginRuntime
    from cauldrond.providers.registry import ProviderRegistry
    from cauldrond.queue import JobQueue
    from cauldrond.rpc.registry import MethodRegistry
    from cauldrond.store import Store
    from cauldrond.web.access import Access


@dataclass
class Services:
    settings: Settings
    token: str
    store: Store
    plugins: pluggy.PluginManager
    providers: ProviderRegistry
    queue: JobQueue
    events: EventBus
    engine: Engine
    experiments: ExperimentService
    methods: MethodRegistry
    results: ResultsService
    # Live step previews: want_for(seconds), latest(job_id=None), frames_made (see engine/previews.py).
    previews: PreviewService
    # Who may do what: tokens, pairing and sign-in codes, open connections (web routes and devices.* share it).
    access: Access
    recovery: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    # The loaded plugins (status, exporters, importers) and the post-processing runner.
    plugin_runtime: PluginRuntime | None = None
    postprocess: PostProcessRunner | None = None
    # Prometheus figures for /metrics, in a registry of this daemon's own.
    metrics: DaemonMetrics = field(default_factory=DaemonMetrics)
    # Imports from other tools parse untrusted files: two threads of their own, so they never take the threads
    # cheap requests use (grids and analyses have ResultsService's pool).
    import_pool: WorkPool = field(default_factory=lambda: WorkPool("imports", workers=2))
    # backups.create and images.verify hash and copy every file: threads of their own too.
    maintenance_pool: WorkPool = field(default_factory=lambda: WorkPool("maintenance", workers=2))
