"""Model hashes as AUTOMATIC1111 writes them, so civitai and other readers can link an image to its model.

A1111's "Model hash" is the first 10 hex digits of the SHA-256 of the whole checkpoint file (its
``modules/hashes.py``; the older 8-digit hash of one slice of the file is not used any more). A diffusers folder
has no A1111 hash; its hash here is the SHA-256 of the lines ``<relative path> <sha256>`` of its weight files,
sorted by path, so it changes exactly when a weight file does. Each file is read once per version: the
daemon remembers hashes in its store (hash_cache.py), a process without one in a JSON file in the models dir.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauldrond.models.hash_cache import HashCache
from cauldrond.providers.base import ProviderError

if TYPE_CHECKING:
    from cauldrond.providers.diffusers.loading import ModelSource

log = logging.getLogger(__name__)

HASH_CACHE_FILE = ".cauldron-hash.json"
SHORT_HASH_LENGTH = 10  # A1111 shows the first 10 hex digits of the full sha256
WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin", ".pth")


@dataclass(frozen=True)
class ModelHash:
    sha256: str

    @property
    def short(self) -> str:
        return self.sha256[:SHORT_HASH_LENGTH]


_cache_lock = threading.Lock()


def model_hash(
    source: ModelSource, models_dir: Path, folder: Path | None = None, cache: HashCache | None = None
) -> ModelHash:
    """sha256 of a model's weights: the file itself (as A1111 hashes a checkpoint), or for a folder the sha256
    of the list of its weight files (relative path and sha256, sorted by path). ``folder`` overrides the path
    (a hub snapshot); ``cache`` remembers file hashes (the daemon's store), else a JSON file in the models dir."""
    root = folder or source.path
    if root is None:
        raise ProviderError(f"model {source.name!r} has no local files to hash")
    if root.is_file():
        return ModelHash(_file_sha256(root, models_dir, cache))
    lines = []
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES):
        lines.append(f"{file.relative_to(root).as_posix()} {_file_sha256(file, models_dir, cache)}\n")
    return ModelHash(hashlib.sha256("".join(lines).encode()).hexdigest())


def _file_sha256(path: Path, models_dir: Path, cache: HashCache | None = None) -> str:
    """Hash a file once: the result is cached keyed by path, size and mtime."""
    stat = path.stat()
    if cache is not None:
        key = str(path.resolve())
        found = cache.lookup(key, stat.st_size, stat.st_mtime_ns)
        if found is None:
            found = _sha256_of(path)
            cache.remember(key, stat.st_size, stat.st_mtime_ns, found)
        return found
    try:
        key = path.resolve().relative_to(models_dir.resolve()).as_posix()
    except ValueError:
        key = str(path.resolve())
    cache_path = models_dir / HASH_CACHE_FILE
    with _cache_lock:
        entries = _read_json(cache_path)
        entry = entries.get(key)
        if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            return str(entry["sha256"])
    value = _sha256_of(path)
    with _cache_lock:
        entries = _read_json(cache_path)
        entries[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
        _write_cache(cache_path, entries)
    return value


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    # A read-only models dir only costs a re-hash next time.
    try:
        fd, tmp = tempfile.mkstemp(prefix=HASH_CACHE_FILE, suffix=".tmp", dir=path.parent)
    except OSError as exc:
        log.warning("cannot write hash cache %s: %s", path, exc)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(cache, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        log.warning("cannot write hash cache %s: %s", path, exc)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
