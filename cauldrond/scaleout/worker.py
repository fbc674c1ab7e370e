"""The Ray actor that runs batches on one GPU (or, with no GPU, one CPU slot) of one node.

It keeps the models it loaded (a bounded LRU: one diffusers provider per model, each holding its pipeline), finds
models by name in its own node's models directory, and refuses a batch whose model file there hashes differently
from the daemon's. It writes nothing: images travel back as raw RGB bytes and the daemon writes and commits them.

One batch denoises at a time (``_generating``); a second one sent meanwhile waits at that lock, "ready", so the GPU
never idles between batches. The actor is threaded (``max_concurrency``), so ``stop`` and ``describe`` answer
while a batch runs: ``stop`` sets the batch's flag, which the provider checks between steps.

``run`` is a streaming generator: it yields small tuples as the batch goes, which the daemon reads as they come
(``dispatch.py``), so progress and previews arrive while the batch runs, in order, with no polling and nothing
for the daemon to host:

- ``("started", batch_id)`` once the batch holds the GPU
- ``("progress", step, total, elapsed_s)`` after each step
- ``("preview", position, step, total, webp, width, height)`` when previews were asked for and one is due
- then exactly one of ``("done", [image...], wall_s)``, ``("interrupted",)``, ``("failed", message)``,
  ``("refused", message)`` (the node's model file differs from the daemon's).
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cauldrond.config import Settings
from cauldrond.params import GenerationParams
from cauldrond.providers.base import GeneratedImage, GenerationInterrupted, ProviderError

log = logging.getLogger(__name__)

# A node's own models folder, when it is not where the daemon's is (set it in the environment of `ray start`).
MODELS_DIR_ENV = "CAULDRON_MODELS_DIR"

Event = tuple[Any, ...]


class BatchPreviews:
    """The progress callback handed to the provider: progress goes to the stream, and a preview frame is made
    (on this thread, where the latents are) when wanted and due."""

    def __init__(self, events: queue.SimpleQueue[Event], every_steps: int, min_interval_s: float | None) -> None:
        self._events = events
        self._every = max(1, every_steps)
        self._min_interval = min_interval_s  # None: no previews wanted for this batch
        self._started = time.monotonic()
        self._last_frame = float("-inf")

    def __call__(self, step: int, total: int) -> None:
        self._events.put(("progress", step, total, round(time.monotonic() - self._started, 3)))

    def latents(self, step: int, total: int, latents: Any, rows: Sequence[int], family: str) -> None:
        if self._min_interval is None or step % self._every or not rows:
            return
        now = time.monotonic()
        if now - self._last_frame < self._min_interval:
            return
        self._last_frame = now
        from cauldrond.media import previews

        try:
            values = latents[0].detach().float().cpu().numpy()
            webp, width, height = previews.encode_webp(
                previews.project(values, previews.FAMILIES.get(family, previews.SD1))
            )
        except Exception:  # a preview must never cost the image
            return
        self._events.put(("preview", rows[0], step, total, webp, width, height))


class CauldronWorker:
    """Wrapped by ``ray.remote`` in ``pool.py``; a plain class so that it can also be read and type-checked."""

    def __init__(
        self, models_dir: str, device: str, allow_pickle: bool, max_models: int, threads: int, plugins: str = ""
    ) -> None:
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        own = os.environ.get(MODELS_DIR_ENV)
        self.models_dir = Path(own or models_dir)
        # Providers want a data dir; a worker keeps nothing there (the hash cache lives in the models dir).
        scratch = Path(tempfile.gettempdir()) / "cauldron-worker"
        self._settings = Settings(
            data_dir=scratch, models_dir=self.models_dir, device=device, allow_pickle=allow_pickle, plugins=plugins
        )
        self._max_models = max(1, max_models)
        # (provider name, model) -> a provider instance holding that model (its pipeline), in LRU order
        self._providers: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._hashes: dict[str, str | None] = {}
        self._generating = threading.Lock()
        self._state = threading.Lock()
        self._stops: dict[str, threading.Event] = {}
        self._waiting: set[str] = set()
        self.current: str | None = None
        self.loads = 0
        self.images = 0
        self.busy_s = 0.0
        self.device = ""

    # -- control (answered while a batch runs) -------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        with self._state:
            providers = list(self._providers.items())
            current, loads = self.current, self.loads
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": self.device or self._settings.device,
            "models_dir": str(self.models_dir),
            "loaded_models": [{"name": name, "sha256": self._hashes.get(name)} for (_, name), _provider in providers],
            "current_batch": current,
            "loads": loads,
            "images": self.images,
            "busy_s": round(self.busy_s, 3),
        }

    def stop(self, batch_id: str, only_waiting: bool = False) -> bool:
        """Stop a batch at its next step; with ``only_waiting``, only if it has not begun (a pause takes back the
        ready batch but lets the running one finish). True when the flag was set."""
        with self._state:
            if only_waiting and batch_id not in self._waiting:
                return False
            self._stops.setdefault(batch_id, threading.Event()).set()
            return True

    # -- the batch --------------------------------------------------------------------------------------------------

    def run(
        self,
        batch_id: str,
        params: list[dict[str, Any]],
        expected_sha256: str | None,
        previews: dict[str, Any] | None,
        provider: str = "diffusers",
    ) -> Iterator[Event]:
        """Run one batch with the named provider (the one the daemon would use for its model)."""
        with self._state:
            stop = self._stops.setdefault(batch_id, threading.Event())
            self._waiting.add(batch_id)
        try:
            with self._generating:
                with self._state:
                    self._waiting.discard(batch_id)
                    self.current = batch_id
                try:
                    yield from self._run_now(batch_id, params, expected_sha256, previews, stop, provider)
                finally:
                    with self._state:
                        self.current = None
        finally:
            with self._state:
                self._waiting.discard(batch_id)
                self._stops.pop(batch_id, None)

    def _run_now(
        self,
        batch_id: str,
        params: list[dict[str, Any]],
        expected_sha256: str | None,
        previews: dict[str, Any] | None,
        stop: threading.Event,
        provider_name: str,
    ) -> Iterator[Event]:
        if stop.is_set():
            yield ("interrupted",)
            return
        batch = [GenerationParams.model_validate(item) for item in params]
        model = batch[0].model
        try:
            # Hashed before the load: a refused model is never loaded (the hash is remembered per file version).
            refusal = self._check_hash(model, expected_sha256)
            if refusal is not None:
                yield ("refused", refusal)
                return
            provider = self._provider(provider_name, model)
        except (ProviderError, ValueError, OSError) as exc:
            yield ("failed", f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc))
            return
        yield ("started", batch_id)
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        interval = None if previews is None else float(previews.get("min_interval_s", 0.0))
        callback = BatchPreviews(events, int((previews or {}).get("every_steps", 1)), interval)
        started = time.monotonic()

        def generate() -> None:
            try:
                images = provider.generate(batch, callback, stop.is_set)
                events.put(("done", [_encoded(image) for image in images], time.monotonic() - started))
            except GenerationInterrupted:
                events.put(("interrupted",))
            except (ProviderError, ValueError) as exc:
                events.put(("failed", str(exc)))
            except Exception as exc:  # the daemon fails the batch with it; the worker lives on
                events.put(("failed", f"{type(exc).__name__}: {exc}"))

        thread = threading.Thread(target=generate, name=f"cauldron-batch-{batch_id}", daemon=True)
        thread.start()
        while True:
            event = events.get()
            if event[0] == "done":
                self.images += len(event[1])
                self.busy_s += event[2]
            yield event
            if event[0] in ("done", "interrupted", "failed"):
                thread.join()
                return

    def _provider(self, name: str, model: str) -> Any:
        """The provider holding ``model``, loaded now if needed; the least recently used beyond the bound goes."""
        key = (name, model)
        with self._state:
            provider = self._providers.get(key)
            if provider is not None:
                self._providers.move_to_end(key)
                return provider
            while len(self._providers) >= self._max_models:
                self._providers.popitem(last=False)
        gc.collect()  # the evicted pipeline's memory before the new one loads
        provider = new_provider(name, self._settings)
        provider.optimize_for_hardware()
        prepare = getattr(provider, "prepare", None)
        if callable(prepare):
            prepare(model)
        with self._state:
            # Listed (describe) only once loaded, together with the count: a report never shows one without the other.
            self._providers[key] = provider
            self.loads += int(getattr(provider, "load_count", 1))
            self.device = str(getattr(provider, "device", "") or self.device)
        return provider

    def _check_hash(self, model: str, expected: str | None) -> str | None:
        from cauldrond.providers.diffusers import loading

        if model not in self._hashes:
            source = loading.resolve_model(self.models_dir, model)
            sha = None if source.path is None else loading.model_hash(source, self.models_dir).sha256
            self._hashes[model] = sha
        own = self._hashes[model]
        if expected is None or own is None or own == expected:
            return None
        return (
            f"node {socket.gethostname()} refused model {model!r}: its file there has sha256 {own}, "
            f"the daemon's has {expected} (docs/scale-out.md: keeping model folders in sync)"
        )


def new_provider(name: str, settings: Settings) -> Any:
    """A fresh instance of the provider called ``name``, made the way the daemon makes it: by the installed
    plugins' ``cauldron_register_providers`` hook (limited by the ``plugins`` setting), so a provider installed by
    pip on a node runs there. Only that hook is called: a worker serves nothing and starts no plugin."""
    import pluggy

    from cauldrond.plugins import hookspecs
    from cauldrond.plugins.manager import PROJECT_NAME
    from cauldrond.plugins.runtime import entry_point_sources, restriction

    allowed = restriction(settings)
    found: list[Any] = []
    for source in entry_point_sources():
        if allowed is not None and source.name not in allowed:
            continue
        manager = pluggy.PluginManager(PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        try:
            manager.register(source.load(), name=source.name)
            manager.hook.cauldron_register_providers(register=found.append, settings=settings)
        except Exception as exc:  # as in the daemon: a plugin that cannot load is skipped, the others serve
            log.warning("plugin %s skipped on this worker: %s", source.name, exc)
            found.clear()
            continue
        for provider in found:
            if getattr(provider, "name", None) == name:
                return provider
        found.clear()
    raise ProviderError(f"no provider {name!r} on this node: is the plugin that registers it installed here?")


def _encoded(image: GeneratedImage) -> dict[str, Any]:
    rgb = image.image.convert("RGB")
    return {
        "rgb": rgb.tobytes(),
        "size": rgb.size,
        "params": image.params.to_json_dict(),
        "info": image.info,
        "wall_time_s": image.wall_time_s,
        "peak_memory_bytes": image.peak_memory_bytes,
    }
