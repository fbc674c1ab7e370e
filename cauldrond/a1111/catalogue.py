"""What the daemon can run, in A1111's listing shapes: checkpoints (``name [hash]``), samplers, schedulers.

A checkpoint's hash is the sha256 of its weights as A1111 computes it for a single file (and, for a diffusers
folder, of the list of its weight files; see providers/diffusers/loading.py); A1111 shows the first 10 hex digits
in the title. Hashes are cached in the models dir, so only the first listing after a new model pays for them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauldrond.providers.base import ProviderError, SamplerInfo
from cauldrond.providers.diffusers import loading
from cauldrond.providers.registry import ProviderRegistry

log = logging.getLogger(__name__)

# A1111's schedule types (modules/sd_schedulers.py) that we have, by A1111 name → our schedule.
SCHEDULERS = {"automatic": "Automatic", "karras": "Karras", "exponential": "Exponential"}


@dataclass(frozen=True)
class Checkpoint:
    name: str  # our model name, what an experiment cell holds
    filename: str
    sha256: str | None

    @property
    def short_hash(self) -> str | None:
        return self.sha256[: loading.SHORT_HASH_LENGTH] if self.sha256 else None

    @property
    def title(self) -> str:
        # A1111 (sd_models.CheckpointInfo): the name, with the short hash in brackets once it is known.
        return f"{self.name} [{self.short_hash}]" if self.short_hash else self.name

    def to_a1111(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "model_name": self.name,
            "hash": self.short_hash,
            "sha256": self.sha256,
            "filename": self.filename,
            "config": None,
        }

    def answers_to(self, text: str) -> bool:
        """A1111 finds a checkpoint by title, name, file name or (short) hash."""
        wanted = text.strip()
        names = {self.title, self.name, Path(self.filename).name, Path(self.filename).stem}
        hashes = {h for h in (self.sha256, self.short_hash) if h}
        return wanted in names or wanted.lower() in hashes


def list_checkpoints(providers: ProviderRegistry, models_dir: Path) -> list[Checkpoint]:
    """Every model the providers list, hashed where it has local files. Blocking: call it on a thread."""
    sources = {source.name: source for source in loading.discover_models(models_dir)}
    found: list[Checkpoint] = []
    for provider in providers.all():
        for info in provider.list_models():
            source = sources.get(info.name)
            sha256 = None
            if source is not None and source.path is not None:
                try:
                    sha256 = loading.model_hash(source, models_dir).sha256
                except (OSError, ProviderError) as exc:
                    log.warning("cannot hash model %s: %s", info.name, exc)
            found.append(Checkpoint(info.name, info.path or info.name, sha256))
    return found


def find_checkpoint(checkpoints: list[Checkpoint], text: str) -> Checkpoint | None:
    return next((c for c in checkpoints if c.answers_to(text)), None)


def samplers_to_a1111(samplers: list[SamplerInfo]) -> list[dict[str, Any]]:
    # A1111 lists each sampler with its aliases (k-diffusion names) and options; we have neither.
    return [{"name": s.name, "aliases": [], "options": {}} for s in samplers]


def schedulers_to_a1111() -> list[dict[str, Any]]:
    return [
        {"name": name, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
        for name, label in SCHEDULERS.items()
    ]


def schedule_of(scheduler: str | None) -> str | None:
    """Our schedule for an A1111 scheduler name or label ("karras", "Karras"); None if we have no such one."""
    if scheduler is None or not scheduler.strip():
        return "Automatic"
    return SCHEDULERS.get(scheduler.strip().lower())
