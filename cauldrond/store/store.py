"""The SQLite store: the one durable copy of experiments, jobs, images, annotations and tokens.

``Store`` is the object the daemon passes around: one ``Database`` (connection, lock, transactions) shared by a
repository per concept — ``store.experiments``, ``store.jobs``, ``store.images``, ``store.annotations``,
``store.plugin_runs``, ``store.tokens``, ``store.prompts`` (prompt history), ``store.trash`` (deleting and
restoring images), ``store.model_hashes`` (model files' sha256 by path, size and mtime),
``store.extra_network_hashes`` (the same for LoRA, VAE and embedding files, per hash algorithm),
``store.batch_sizes`` (the measured best batch size per model, image size and device). Every repository method
returns only after its COMMIT.
"""

from __future__ import annotations

from pathlib import Path

from cauldrond.store.annotations import AnnotationRepository
from cauldrond.store.batch_sizes import BatchSizeRepository
from cauldrond.store.database import Database
from cauldrond.store.experiments import ExperimentRepository
from cauldrond.store.extra_network_hashes import ExtraNetworkHashRepository
from cauldrond.store.images import ImageRepository
from cauldrond.store.jobs import JobRepository
from cauldrond.store.model_hashes import ModelHashRepository
from cauldrond.store.plugin_runs import PluginRunRepository
from cauldrond.store.prompts import PromptRepository
from cauldrond.store.tokens import TokenRepository
from cauldrond.store.trash import TrashRepository


class Store:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.experiments = ExperimentRepository(database)
        self.jobs = JobRepository(database)
        self.images = ImageRepository(database)
        self.annotations = AnnotationRepository(database)
        self.plugin_runs = PluginRunRepository(database)
        self.tokens = TokenRepository(database)
        self.prompts = PromptRepository(database)
        self.trash = TrashRepository(database, self.images)
        self.model_hashes = ModelHashRepository(database)
        self.extra_network_hashes = ExtraNetworkHashRepository(database)
        self.batch_sizes = BatchSizeRepository(database)

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (or create) the database at ``path`` and bring its schema up to date."""
        return cls(await Database.open(path))

    @property
    def path(self) -> Path:
        return self.database.path

    @property
    def is_open(self) -> bool:
        return self.database.is_open

    async def close(self) -> None:
        await self.database.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
