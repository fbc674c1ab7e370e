"""LoRAs, VAEs and textual-inversion embeddings in the models dir: finding them by name, and their A1111 hashes.

``<models_dir>/loras/``, ``<models_dir>/vae/`` and ``<models_dir>/embeddings/`` (subfolders are searched too, as
A1111 does). A LoRA and an embedding are named by their file stem (``<lora:detail:0.6>``, the word ``badhands``
in a prompt); a VAE by its file name (``vae-ft-mse.safetensors``, as A1111's "VAE" infotext and sd_vae setting
name it) or, for a diffusers folder (config.json and weights), by the folder's name. Only ``.safetensors`` files
are used: a ``.pt``/``.ckpt``/``.bin`` file is a pickle, which can run code when loaded, so it is listed with a
note saying so and never loaded (convert it to safetensors).

Hashes are A1111's: a LoRA's is the sha256 of its tensor data (the bytes after the safetensors header, kohya's
"addnet" hash, civitai's AutoV3), a VAE's and an embedding's the sha256 of the whole file. Each file version
(path, size, mtime) is hashed once: ``ExtraHashes`` remembers the values in the daemon's store when it has one
(models/hash_cache.py), else in memory.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cauldrond.models.hash_cache import ExtraHashCache
from cauldrond.providers.base import ProviderError
from cauldrond.providers.diffusers import loading

log = logging.getLogger(__name__)

LORA = "lora"
VAE = "vae"
EMBEDDING = "embedding"
FOLDERS = {LORA: "loras", VAE: "vae", EMBEDDING: "embeddings"}
LORA_SHORT_HASH = 12  # A1111's network shorthash
EMBEDDING_SHORT_HASH = 12  # A1111's textual-inversion shorthash
VAE_SHORT_HASH = 10  # A1111's "VAE hash"
PICKLE_NOTE = "a pickle file, which can run code when loaded: not used; convert it to .safetensors"
TENSOR_DATA_SHA256 = "sha256-after-header"  # the algorithm names stored with each remembered hash
FILE_SHA256 = "sha256"


@dataclass(frozen=True)
class ExtraFile:
    """One LoRA, VAE or embedding found in the models dir."""

    kind: str  # LORA | VAE | EMBEDDING
    name: str
    path: Path
    usable: bool = True
    note: str = ""
    # Where its hashes are remembered (the provider's); None: the process-wide memory cache.
    hashes: ExtraHashes | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "usable": self.usable, "note": self.note}

    def short_hash(self) -> str | None:
        """The short hash A1111's infotext gives this file ("Lora hashes", "VAE hash", "TI hashes"); None for a
        file never read (a pickle) or one that cannot be read. Blocking: a first hash reads the whole file."""
        if not self.usable:
            return None
        try:
            if self.kind == LORA:
                return lora_hash(self.path, self.hashes)[:LORA_SHORT_HASH]
            if self.kind == VAE:
                # A diffusers folder's weights, as the VAE override hashes them (vae_override._weights_file).
                weights = self.path if self.path.is_file() else min(self.path.glob("*.safetensors"), default=None)
                return None if weights is None else file_hash(weights, self.hashes)[:VAE_SHORT_HASH]
            return file_hash(self.path, self.hashes)[:EMBEDDING_SHORT_HASH]
        except OSError:
            return None


def folder_of(models_dir: Path, kind: str) -> Path:
    return models_dir / FOLDERS[kind]


def list_extras(models_dir: Path, kind: str, hashes: ExtraHashes | None = None) -> list[ExtraFile]:
    """Every file of ``kind`` under its folder, by name; a name found twice keeps the first path (logged).
    ``hashes`` is where the listed files' hashes are remembered (see ExtraFile.short_hash)."""
    root = folder_of(models_dir, kind)
    if not root.is_dir():
        return []
    found: dict[str, ExtraFile] = {}
    for entry in sorted(root.rglob("*"), key=lambda path: path.as_posix()):
        extra = _extra_for(kind, entry, hashes)
        if extra is None:
            continue
        if extra.name in found:
            log.warning("%s has two %ss named %r; using %s", root, kind, extra.name, found[extra.name].path)
            continue
        found[extra.name] = extra
    return sorted(found.values(), key=lambda extra: extra.name.lower())


def _extra_for(kind: str, entry: Path, hashes: ExtraHashes | None) -> ExtraFile | None:
    if any(part.startswith(".") for part in entry.parts[-1:]):
        return None
    if kind == VAE and entry.is_dir() and (entry / "config.json").is_file():
        return ExtraFile(kind, entry.name, entry, hashes=hashes)
    if not entry.is_file() or (kind == VAE and (entry.parent / "config.json").is_file()):
        return None  # a diffusers VAE folder's own weights are part of the folder
    suffix = entry.suffix.lower()
    name = entry.name if kind == VAE else entry.stem
    if suffix == ".safetensors":
        return ExtraFile(kind, name, entry, hashes=hashes)
    if suffix in loading.PICKLE_SUFFIXES:
        return ExtraFile(kind, name, entry, usable=False, note=PICKLE_NOTE, hashes=hashes)
    return None


def find_extra(models_dir: Path, kind: str, name: str, hashes: ExtraHashes | None = None) -> ExtraFile:
    """The usable ``kind`` called ``name``; ProviderError naming it and what there is otherwise."""
    extras = list_extras(models_dir, kind, hashes)
    for extra in extras:
        if extra.name == name:
            if not extra.usable:
                raise ProviderError(f"{kind} {name!r} ({extra.path.name}) is {extra.note}")
            return extra
    known = ", ".join(extra.name for extra in extras if extra.usable) or "none"
    raise ProviderError(f"unknown {kind} {name!r}; {kind}s in {folder_of(models_dir, kind)}: {known}")


def mentions(prompt: str, name: str) -> bool:
    """Whether ``prompt`` uses the embedding ``name``: the name as a whole word (A1111's rule)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", prompt) is not None


def check_safetensors(extra: ExtraFile) -> None:
    """Refuse a file that is not safetensors by its bytes (a pickle renamed, a truncated or garbled header)."""
    try:
        loading.check_single_file(extra.path, allow_pickle=False)
    except ProviderError as exc:
        raise ProviderError(f"{extra.kind} {extra.path.name}: {exc}") from None


class MemoryHashCache:
    """An ExtraHashCache in memory, for a process without a daemon store (the command line, provider tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str, int, int], str] = {}

    def lookup(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int) -> str | None:
        with self._lock:
            return self._values.get((path, algorithm, size_bytes, mtime_ns))

    def remember(self, path: str, algorithm: str, size_bytes: int, mtime_ns: int, sha256: str) -> None:
        with self._lock:
            self._values[(path, algorithm, size_bytes, mtime_ns)] = sha256


class ExtraHashes:
    """A1111's hashes of LoRA, VAE and embedding files, each computed once per file version (path, size, mtime)
    and remembered in ``cache``; the provider hands in the daemon's store with ``use``."""

    def __init__(self, cache: ExtraHashCache | None = None) -> None:
        self.cache: ExtraHashCache = cache if cache is not None else MemoryHashCache()

    def use(self, cache: ExtraHashCache) -> None:
        self.cache = cache

    def lora(self, path: Path) -> str:
        """A1111's LoRA hash (kohya-ss's "addnet" hash): the sha256 of a safetensors file after its header, so
        editing the metadata keeps the hash."""
        return self._cached(path, TENSOR_DATA_SHA256, lambda: _sha256_from(path, _tensor_data_offset(path)))

    def whole_file(self, path: Path) -> str:
        """The sha256 of the whole file (A1111's VAE and textual-inversion hashes)."""
        return self._cached(path, FILE_SHA256, lambda: _sha256_from(path, 0))

    def _cached(self, path: Path, algorithm: str, compute: Callable[[], str]) -> str:
        stat = path.stat()
        key = str(path.resolve())
        found = self.cache.lookup(key, algorithm, stat.st_size, stat.st_mtime_ns)
        if found is None:
            found = compute()
            self.cache.remember(key, algorithm, stat.st_size, stat.st_mtime_ns, found)
        return found


_in_memory = ExtraHashes()


def lora_hash(path: Path, hashes: ExtraHashes | None = None) -> str:
    """ExtraHashes.lora through ``hashes``, or the process-wide memory cache."""
    return (hashes or _in_memory).lora(path)


def file_hash(path: Path, hashes: ExtraHashes | None = None) -> str:
    """ExtraHashes.whole_file through ``hashes``, or the process-wide memory cache."""
    return (hashes or _in_memory).whole_file(path)


def _tensor_data_offset(path: Path) -> int:
    with path.open("rb") as handle:
        return 8 + int.from_bytes(handle.read(8), "little")


def _sha256_from(path: Path, offset: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Each tensor's shape from a safetensors header, without reading the tensors (empty if unreadable)."""
    import json

    try:
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 0 < length <= 100 * 1024 * 1024:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError):
        return {}
    if not isinstance(header, dict):
        return {}
    return {
        str(name): [int(size) for size in entry["shape"]]
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("shape"), list)
    }
