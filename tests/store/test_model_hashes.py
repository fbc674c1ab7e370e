"""Model file hashes in the store: found only for the file version (size, mtime) they were made from, and the
StoreHashCache that worker threads use to reach them on the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from cauldrond.models.hash_cache import StoreHashCache
from cauldrond.providers.diffusers.loading import ModelSource, model_hash
from cauldrond.store import Store


async def test_a_hash_is_found_only_for_the_same_size_and_mtime(store: Store) -> None:
    repo = store.model_hashes
    assert await repo.get("/m/a.safetensors", 10, 1) is None
    await repo.put("/m/a.safetensors", 10, 1, "ab" * 32)
    assert await repo.get("/m/a.safetensors", 10, 1) == "ab" * 32
    assert await repo.get("/m/a.safetensors", 11, 1) is None
    assert await repo.get("/m/a.safetensors", 10, 2) is None
    await repo.put("/m/a.safetensors", 11, 2, "cd" * 32)  # the file changed: its row is replaced
    assert await repo.get("/m/a.safetensors", 10, 1) is None
    assert await repo.get("/m/a.safetensors", 11, 2) == "cd" * 32


async def test_worker_threads_hash_once_per_file_version(store: Store, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    weights = models / "m.safetensors"
    weights.write_bytes(b"weights" * 1000)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    cache = StoreHashCache(store.model_hashes, asyncio.get_running_loop())
    source = ModelSource("m", "single-file", weights)

    assert (await asyncio.to_thread(model_hash, source, models, None, cache)).sha256 == expected
    stat = weights.stat()
    assert await store.model_hashes.get(str(weights.resolve()), stat.st_size, stat.st_mtime_ns) == expected
    assert not (models / ".cauldron-hash.json").exists()  # the store, not a file in the models dir

    # The remembered value is what a second call returns: the file is not read again while unchanged.
    await store.model_hashes.put(str(weights.resolve()), stat.st_size, stat.st_mtime_ns, "0" * 64)
    assert (await asyncio.to_thread(model_hash, source, models, None, cache)).sha256 == "0" * 64
    # A new mtime is a new version of the file: hashed again.
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert (await asyncio.to_thread(model_hash, source, models, None, cache)).sha256 == expected


async def test_the_cache_refuses_to_block_its_own_loop(store: Store) -> None:
    cache = StoreHashCache(store.model_hashes, asyncio.get_running_loop())
    with pytest.raises(RuntimeError, match="worker thread"):
        cache.lookup("/m/a", 1, 1)
