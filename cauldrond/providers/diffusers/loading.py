"""Finding models in the models dir, checking what they are by their bytes, hashing and loading them.

Clients name models; they never give paths. A name is looked up in the listing of the models dir (or, with
one slash, treated as a hub id), so no client string is ever joined onto a filesystem path.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauldrond.models import read_sidecar_config
from cauldrond.models.hash_cache import HashCache
from cauldrond.models.tiny import MARKER_FILE
from cauldrond.providers.base import ProviderError

# Re-exported (the redundant aliases say so): loading is where callers look for a model's hash.
from cauldrond.providers.diffusers.model_hashing import HASH_CACHE_FILE as HASH_CACHE_FILE
from cauldrond.providers.diffusers.model_hashing import SHORT_HASH_LENGTH as SHORT_HASH_LENGTH
from cauldrond.providers.diffusers.model_hashing import ModelHash as ModelHash
from cauldrond.providers.diffusers.model_hashing import model_hash as model_hash

log = logging.getLogger(__name__)

FOLDER = "diffusers-folder"
SINGLE_FILE = "single-file"
HUB = "hub"

SAFETENSORS = "safetensors"
TORCH_ZIP = "torch-zip"
PICKLE = "pickle"
UNKNOWN = "unknown"

PICKLE_SUFFIXES = (".ckpt", ".pt", ".bin", ".pth")
SINGLE_FILE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
WEIGHT_SUFFIXES = SINGLE_FILE_SUFFIXES

_HUB_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit on a header


@dataclass(frozen=True)
class ModelSource:
    """A model the provider can load: a local folder or file found by discovery, or a hub id."""

    name: str
    kind: str  # FOLDER | SINGLE_FILE | HUB
    path: Path | None = None
    note: str = ""

    @property
    def is_pickle_file(self) -> bool:
        return self.kind == SINGLE_FILE and self.path is not None and self.path.suffix.lower() in PICKLE_SUFFIXES


# --- names -----------------------------------------------------------------------------------------------


def is_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(_HUB_PART.match(part) and ".." not in part for part in parts)


def check_model_name(name: str) -> None:
    """Reject names that could reach outside the models dir; the message says why."""
    if not name or name != name.strip() or "\x00" in name:
        raise ProviderError(f"invalid model name {name!r}")
    if ".." in name:
        raise ProviderError(f"invalid model name {name!r}: '..' is not allowed")
    if name.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", name):
        raise ProviderError(f"invalid model name {name!r}: give a model name, not a path")
    if "\\" in name or ("/" in name and not is_hub_id(name)):
        raise ProviderError(f"invalid model name {name!r}: only a hub id 'org/name' may contain a '/'")
    if name.startswith("."):
        raise ProviderError(f"invalid model name {name!r}: hidden names are not models")


# --- format by content ------------------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """What the file is by its first bytes: SAFETENSORS, TORCH_ZIP (torch.save's zip), PICKLE, or UNKNOWN."""
    with path.open("rb") as handle:
        head = handle.read(9)
        size = os.fstat(handle.fileno()).st_size
    if head.startswith(b"PK\x03\x04"):
        return TORCH_ZIP
    # Safetensors first: a header length of 128 + 256k bytes also starts with 0x80, a pickle's PROTO opcode.
    if len(head) == 9:
        (header_length,) = struct.unpack("<Q", head[:8])
        if 0 < header_length <= min(_MAX_HEADER_BYTES, size - 8) and head[8:9] == b"{":
            return SAFETENSORS
    if head.startswith(b"\x80"):
        return PICKLE
    return UNKNOWN


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors header (empty when absent or unreadable)."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > _MAX_HEADER_BYTES:
                return {}
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {}


def check_single_file(path: Path, allow_pickle: bool) -> str:
    """The checked format of a single-file checkpoint, or a ProviderError saying why it is refused."""
    try:
        found = detect_format(path)
    except OSError as exc:
        raise ProviderError(f"cannot read checkpoint {path.name}: {exc.strerror}") from exc
    suffix = path.suffix.lower()
    is_pickle = found in (TORCH_ZIP, PICKLE)
    if suffix == ".safetensors":
        if is_pickle:
            # A pickle can run arbitrary code when loaded; one posing as safetensors is refused outright.
            raise ProviderError(
                f"{path.name} is named .safetensors but its content is a pickle ({found}); refusing to load it"
            )
        if found != SAFETENSORS:
            raise ProviderError(f"{path.name} is not a valid safetensors file")
        return found
    if found == SAFETENSORS:
        raise ProviderError(f"{path.name} holds safetensors data; rename it to .safetensors to load it")
    if not is_pickle:
        raise ProviderError(f"{path.name} is not a checkpoint format this provider recognises")
    if not allow_pickle:
        raise ProviderError(
            f"{path.name} is a pickle checkpoint, which can run code when loaded; "
            "convert it to .safetensors, or let the daemon load pickles with the allow_pickle setting"
        )
    return found


# --- discovery --------------------------------------------------------------------------------------------


def discover_models(models_dir: Path) -> list[ModelSource]:
    """Every model directly inside ``models_dir``: folders with model_index.json and single-file checkpoints.

    Reads only directory entries, small JSON files and safetensors headers, so it is cheap and does not depend
    on what the provider has loaded."""
    try:
        entries = sorted(models_dir.iterdir(), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found: dict[str, ModelSource] = {}
    # Folders first so a folder wins over a same-named file; either way the clash is logged.
    for entry in sorted(entries, key=lambda p: not p.is_dir()):
        if entry.name.startswith("."):
            continue
        source = _source_for(entry)
        if source is None:
            continue
        if source.name in found:
            log.warning("models dir has two models named %r; using %s", source.name, found[source.name].path)
            continue
        found[source.name] = source
    return list(found.values())


def _source_for(entry: Path) -> ModelSource | None:
    if entry.is_dir():
        if not (entry / "model_index.json").is_file():
            return None
        marker = _read_json(entry / MARKER_FILE)
        return ModelSource(entry.name, FOLDER, entry, str(marker.get("note", "")))
    if not entry.is_file() or entry.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        return None
    notes = []
    if entry.suffix.lower() == ".safetensors":
        metadata_note = safetensors_metadata(entry).get("cauldron.note")
        if metadata_note:
            notes.append(metadata_note)
    else:
        notes.append("pickle checkpoint: loads only when allow_pickle is set")
    config = read_sidecar_config(entry)
    if config:
        notes.append(f"config: {config}")
    return ModelSource(entry.stem, SINGLE_FILE, entry, "; ".join(notes))


def resolve_model(models_dir: Path, name: str) -> ModelSource:
    """The local model called ``name``, or a hub source for an 'org/name' id; ProviderError otherwise."""
    check_model_name(name)
    if is_hub_id(name):
        return ModelSource(name, HUB)
    for source in discover_models(models_dir):
        if source.name == name:
            return source
    known = ", ".join(s.name for s in discover_models(models_dir)) or "none"
    raise ProviderError(f"unknown model {name!r}; models in {models_dir}: {known}")


# --- loading ----------------------------------------------------------------------------------------------


def load_pipeline(
    source: ModelSource, models_dir: Path, *, allow_pickle: bool, dtype: Any, hash_cache: HashCache | None = None
) -> tuple[Any, ModelHash]:
    """Load ``source`` as a diffusers pipeline on the CPU in ``dtype``; also return its weights' hash.

    Raises ProviderError for anything the user can fix: refused formats, missing configs, an unreachable
    hub."""
    _quiet_loading_progress_bars()
    if source.kind == HUB:
        return _load_hub(source, models_dir, allow_pickle=allow_pickle, dtype=dtype)
    assert source.path is not None  # local sources always come from discovery, with a path
    if source.kind == FOLDER:
        pipeline = _load_folder(source.name, source.path, allow_pickle=allow_pickle, dtype=dtype)
    else:
        from cauldrond.providers.diffusers.single_file_loading import load_single_file

        check_single_file(source.path, allow_pickle)
        pipeline = load_single_file(source.path, models_dir, dtype=dtype, dtype_kwarg=_dtype_kwarg())
    return pipeline, model_hash(source, models_dir, cache=hash_cache)


def _load_folder(name: str, folder: Path, *, allow_pickle: bool, dtype: Any) -> Any:
    import diffusers

    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProviderError(f"model {name!r}: cannot read model_index.json: {exc}") from exc
    kwargs: dict[str, Any] = {_dtype_kwarg(): dtype, "local_files_only": True}
    if not allow_pickle:
        # Without this diffusers falls back to .bin pickles when a component has no safetensors file.
        kwargs["use_safetensors"] = True
    if isinstance(index, dict) and index.get("_class_name") == "StableDiffusionXLPipeline":
        kwargs["add_watermarker"] = False  # as A1111 and ComfyUI: the image is the model's, unaltered
    if isinstance(index, dict) and "safety_checker" in index:
        # The daemon is a research tool run by the owner; a classifier blacking out images would skew results.
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    try:
        return diffusers.DiffusionPipeline.from_pretrained(str(folder), **kwargs)
    except (OSError, ValueError) as exc:
        hint = "" if allow_pickle else " (pickle .bin weights are refused unless allow_pickle is set)"
        raise ProviderError(f"cannot load model {name!r}{hint}: {exc}") from exc


def _load_hub(source: ModelSource, models_dir: Path, *, allow_pickle: bool, dtype: Any) -> tuple[Any, ModelHash]:
    import diffusers
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    kwargs: dict[str, Any] = {
        _dtype_kwarg(): dtype,
        "local_files_only": hub_offline(),
        "safety_checker": None,
        "requires_safety_checker": False,
    }
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    try:
        # The owner names the hub model; pinning a revision is theirs to do (org/name@rev is not supported yet).
        # snapshot_download reads the local cache only (local_files_only), to hash what was just loaded.
        pipeline = diffusers.DiffusionPipeline.from_pretrained(source.name, **kwargs)
        snapshot = Path(huggingface_hub.snapshot_download(source.name, local_files_only=True))  # nosec B615
    except RepositoryNotFoundError as exc:
        raise ProviderError(f"model {source.name!r} is not in the models dir and not on the hub") from exc
    except Exception as exc:
        if _is_unreachable(exc):
            raise ProviderError(
                f"model {source.name!r} is not in the models dir and the hub cannot be reached: {exc}"
            ) from exc
        raise ProviderError(f"cannot load hub model {source.name!r}: {exc}") from exc
    return pipeline, model_hash(source, models_dir, folder=snapshot)


def _dtype_kwarg() -> str:
    # diffusers 0.42 renamed from_pretrained's torch_dtype to dtype and warns on the old name. Older releases
    # ignore an unknown dtype, so the provider checks the loaded dtype anyway and casts when it differs.
    version = tuple(int(part) for part in re.findall(r"\d+", importlib.metadata.version("diffusers"))[:2])
    return "dtype" if version >= (0, 42) else "torch_dtype"


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as it is now; huggingface_hub reads it only once, at import."""
    import huggingface_hub.constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in ("1", "true", "yes", "on") or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _is_unreachable(exc: BaseException) -> bool:
    if hub_offline():
        return True
    # The network layer's errors (httpx, requests...) surface wrapped, so look along the cause chain.
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, (OSError, TimeoutError)):  # ConnectionError is an OSError
            return True
        if type(current).__module__.split(".")[0] in ("httpx", "httpcore", "requests", "urllib3"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_progress_bars_disabled = False


def _quiet_loading_progress_bars() -> None:
    # Loading bars would be written to the daemon's log on every model switch.
    global _progress_bars_disabled
    if not _progress_bars_disabled:
        import diffusers.utils.logging
        import transformers.utils.logging

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
        _progress_bars_disabled = True
