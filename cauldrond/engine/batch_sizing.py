"""Auto batch size: the engine measures which batch size gives the most images per second for each (model, image
size, device) on first use, and remembers it in the store.

Probing runs on real cells, so it wastes no work: the first batch of a new key is taken at ``max_batch_size`` (as
without auto sizing), the next ones at half the size before, and so on, each timed by its denoising seconds (the
provider's ``wall_time_s``; model loads are not in it). Probing stops at the first halving that costs at least
``GAIN`` of the throughput: the size above it is the largest that still improves images/s. A batch that ran out of
memory comes back split (its images' ``batch_size`` is smaller than the batch, see providers/diffusers/oom.py);
then the size that fit becomes the new top and nothing larger is tried. Probing downward keeps the first batch of
a sweep as it always was and never starts a batch larger than the owner's bound.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cauldrond.store import NewImage
from cauldrond.store.batch_sizes import BatchSizeChoice, BatchSizeRepository

log = logging.getLogger(__name__)

# A doubling of the batch must buy at least 5% more images/s to be worth its memory and coarser progress.
GAIN = 1.05


@dataclass(frozen=True)
class SizeKey:
    model: str
    width: int
    height: int
    device: str


@dataclass
class _Probe:
    target: int  # the size the next batch of this key is taken at
    up_to: int  # max_batch_size when the probe began
    rates: dict[int, float] = field(default_factory=dict)  # images/s measured per batch size


class BatchSizer:
    """What ``take_batch`` asks for the next batch's size, and what each finished batch teaches it.

    Disabled (``auto_batch_size = false``), every size is ``max_batch_size``, as before auto sizing."""

    def __init__(
        self, *, max_batch_size: int, enabled: bool, store: BatchSizeRepository | None, device: str = "unknown"
    ) -> None:
        self.max_batch_size = max_batch_size
        self.enabled = enabled
        self.device = device  # "cuda:NVIDIA H200": one daemon, one device (set at engine start)
        self._store = store
        self._chosen: dict[SizeKey, BatchSizeChoice] = {}
        self._probes: dict[SizeKey, _Probe] = {}
        self.probe_batches = 0  # batches taken while probing since start (0 when every key was remembered)

    async def load(self) -> None:
        if self._store is None or not self.enabled:
            return
        for choice in await self._store.all():
            self._chosen[SizeKey(choice.model, choice.width, choice.height, choice.device)] = choice

    def key_of(self, params: Mapping[str, Any]) -> SizeKey:
        return SizeKey(str(params.get("model", "")), int(params["width"]), int(params["height"]), self.device)

    def planned_size(self, params: Mapping[str, Any]) -> int:
        """The size batches of these params will have once calibrated: the remembered choice, else the bound.
        No side effects (``experiments.plan`` and estimates use it)."""
        if not self.enabled:
            return self.max_batch_size
        choice = self._usable_choice(self.key_of(params))
        return self.max_batch_size if choice is None else min(choice.batch_size, self.max_batch_size)

    def size_for(self, params: Mapping[str, Any]) -> int:
        """The size of the batch about to be taken whose first cell has these params; starts a probe for a key
        not seen before."""
        if not self.enabled:
            return self.max_batch_size
        key = self.key_of(params)
        choice = self._usable_choice(key)
        if choice is not None:
            return min(choice.batch_size, self.max_batch_size)
        probe = self._probes.get(key)
        if probe is None or probe.up_to != self.max_batch_size:
            probe = self._probes[key] = _Probe(target=self.max_batch_size, up_to=self.max_batch_size)
        self.probe_batches += 1
        return min(probe.target, self.max_batch_size)

    def _usable_choice(self, key: SizeKey) -> BatchSizeChoice | None:
        choice = self._chosen.get(key)
        # Measured under a lower bound that stopped it (the bound was the best size): a higher bound may do better.
        if choice is None or (choice.batch_size >= choice.probed_up_to and self.max_batch_size > choice.probed_up_to):
            return None
        return choice

    async def observe(self, taken: int, images: Sequence[NewImage]) -> BatchSizeChoice | None:
        """A batch of ``taken`` cells finished as ``images``; returns the choice when this ends a probe (it is
        in the store by then)."""
        if not self.enabled or not images:
            return None
        key = self.key_of(images[0].params)
        probe = self._probes.get(key)
        if probe is None:
            return None
        seconds = sum(image.wall_time_s for image in images)
        if seconds <= 0:
            return None
        fitted = max(int(image.metadata.get("batch_size", len(images))) for image in images)
        if fitted < len(images):
            # Out of memory: split by the provider. Nothing larger than what fit is tried again.
            probe.rates = {size: rate for size, rate in probe.rates.items() if size < fitted}
            probe.target = fitted
            log.info("auto batch size: %s ran out of memory at %d; probing from %d down", key, taken, fitted)
        elif len(images) != probe.target:
            return None  # the queue had fewer matching cells: not a measurement of the size being probed
        rate = len(images) / seconds
        size = probe.target
        probe.rates[size] = rate
        larger = [measured for measured in probe.rates if measured > size]
        if larger and probe.rates[min(larger)] >= GAIN * rate:
            return await self._choose(key, probe, min(larger))
        if size == 1:
            return await self._choose(key, probe, 1)
        probe.target = size // 2
        return None

    async def _choose(self, key: SizeKey, probe: _Probe, size: int) -> BatchSizeChoice:
        choice = BatchSizeChoice(
            model=key.model,
            width=key.width,
            height=key.height,
            device=key.device,
            batch_size=size,
            images_per_s=round(probe.rates[size], 4),
            probed_up_to=probe.up_to,
        )
        if self._store is not None:
            await self._store.put(choice)
        self._chosen[key] = choice
        del self._probes[key]
        log.info(
            "auto batch size for %s: %d (images/s by size: %s)",
            key,
            size,
            {s: round(r, 3) for s, r in sorted(probe.rates.items())},
        )
        return choice

    def describe(self) -> list[dict[str, Any]]:
        """Every remembered choice, for status and docs."""
        return [
            {
                "model": c.model,
                "width": c.width,
                "height": c.height,
                "device": c.device,
                "batch_size": c.batch_size,
                "images_per_s": c.images_per_s,
            }
            for c in self._chosen.values()
        ]
