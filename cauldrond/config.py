"""Settings: defaults < TOML file < environment (CAULDRON_*) < command-line flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

ENV_PREFIX = "CAULDRON_"


class ConfigError(ValueError):
    """A setting could not be read; the message names the setting and its source."""


def default_data_dir() -> Path:
    # XDG_DATA_HOME on Linux, ~/Library/Application Support on macOS, %LOCALAPPDATA% on Windows.
    return Path(platformdirs.user_data_dir("shadow-cauldron", appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 7860
    models_dir: Path | None = None  # defaults to <data_dir>/models
    default_model: str = "tiny-sd"  # the model of a cell that names none (generate, sweep, convergence...)
    device: str = "auto"  # auto | cuda | mps | cpu
    allow_pickle: bool = False  # load .ckpt/.bin pickles only when the owner says so
    # 8: issue 11 measured batch 8 at 2.27x the naive loop against 2.00x for 4; auto sizing picks less where it
    # does not pay (or does not fit), so the bound costs a device that wants less one probe batch.
    max_batch_size: int = 8
    # Measure the best batch size per model, image size and device on first use (up to max_batch_size) and
    # remember it; false: every batch takes max_batch_size cells.
    auto_batch_size: bool = True
    max_cells: int = 10_000
    max_attempts: int = 3  # crash guard: daemon deaths while a job runs alone before it is quarantined (1-3)
    crash_backoff_s: int = 10  # crash guard: a struck suspect waits at least this long into a life (doubling)
    # Room (MB) a batch must leave free in the images and database folders, or the queue pauses until there
    # is; 0 turns the check off (a write that fails still pauses the queue instead of failing jobs).
    min_free_disk_mb: int = 256
    log_level: str = "INFO"
    log_format: str = "plain"  # "plain" (journald/console) or "json": one object per line, with job ids
    postprocess_concurrency: int = 2  # plugin post-processing calls running at once
    postprocess_timeout_s: int = 60  # per call; a plugin may set process_timeout_s in [plugins.<name>]
    max_connections: int = 100  # open RPC WebSockets; more are refused with HTTP 503
    max_rpc_in_flight: int = 128  # RPC requests running at once across all connections (fair share)
    # Live step previews (job.preview), made only while wanted: at most every N steps, at most M a second per batch
    preview_every_steps: int = 1
    preview_max_per_s: int = 4  # 0: no per-second cap
    plugins: str = ""  # comma-separated plugin names to load; empty loads every installed plugin
    lan: bool = False  # serve on the LAN (HTTPS) as well as loopback
    instance_name: str = ""  # mDNS instance name; empty means the hostname
    tls_cert: Path | None = None  # the owner's own certificate; otherwise a local CA issues one
    tls_key: Path | None = None
    # The LAN listener (HTTPS, only with lan on): every interface by default; tests bind 127.0.0.1.
    lan_host: str = "0.0.0.0"  # nosec B104 - only with lan on, the owner's explicit opt-in
    lan_port: int = -1  # -1: port + 1 (0 when port is 0, i.e. a free port)
    # The AUTOMATIC1111-compatible API under /sdapi/v1/ (docs/a1111-api.md): "auto" serves it on loopback, "off"
    # nowhere; on the LAN listener only with a1111_api_lan as well.
    a1111_api: str = "auto"
    a1111_api_lan: bool = False
    # Scale-out (docs/scale-out.md): "local" runs batches on this process's worker thread; "ray" dispatches them
    # to Ray actors, one per GPU of every node of the cluster at ray_address ("local": a private single-node Ray
    # started by the daemon; otherwise the address of a running cluster's head, e.g. "192.168.1.20:6379").
    engine: str = "local"
    ray_address: str = "local"
    ray_cpu_workers: int = 1  # workers on a node without GPUs (0: GPU nodes only)
    ray_worker_models: int = 2  # models each worker keeps loaded (least recently used goes first)
    ray_worker_threads: int = 0  # torch threads per worker; 0 leaves torch's default
    # [plugins.<name>] tables of the TOML file, handed to plugins as they are.
    plugin_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def plugin_config(self, name: str) -> Mapping[str, Any]:
        return self.plugin_settings.get(name, {})

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "cauldron.sqlite3"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def renders_dir(self) -> Path:
        # Grids and plots live outside images/: start-up recovery deletes PNGs there that have no image row.
        return self.data_dir / "grids"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def resolved_lan_port(self) -> int:
        if self.lan_port >= 0:
            return self.lan_port
        return self.port + 1 if self.port else 0


_FIELD_TYPES: dict[str, type] = {
    "data_dir": Path,
    "host": str,
    "port": int,
    "models_dir": Path,
    "default_model": str,
    "device": str,
    "allow_pickle": bool,
    "max_batch_size": int,
    "auto_batch_size": bool,
    "max_cells": int,
    "max_attempts": int,
    "crash_backoff_s": int,
    "min_free_disk_mb": int,
    "log_level": str,
    "log_format": str,
    "plugins": str,
    "postprocess_concurrency": int,
    "postprocess_timeout_s": int,
    "max_connections": int,
    "max_rpc_in_flight": int,
    "preview_every_steps": int,
    "preview_max_per_s": int,
    "lan": bool,
    "instance_name": str,
    "tls_cert": Path,
    "tls_key": Path,
    "lan_host": str,
    "lan_port": int,
    "a1111_api": str,
    "a1111_api_lan": bool,
    "engine": str,
    "ray_address": str,
    "ray_cpu_workers": int,
    "ray_worker_models": int,
    "ray_worker_threads": int,
}
_DEVICES = ("auto", "cuda", "mps", "cpu")
_LOG_FORMATS = ("plain", "json")
_A1111_API = ("auto", "off")
_ENGINES = ("local", "ray")


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _FIELD_TYPES.get(name)
    if kind is None:
        raise ConfigError(f"unknown setting {name!r} in {source}")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind is int:
            if isinstance(value, bool):
                raise ValueError("not an integer")
            return int(value)
        if kind is Path:
            return Path(str(value)).expanduser()
        return str(value)
    except ValueError as exc:
        raise ConfigError(f"setting {name!r} from {source}: {exc}") from exc


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the three sources. ``overrides`` holds flags the user actually gave (None values are ignored)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}

    path = config_file
    if path is None and environ.get(ENV_PREFIX + "CONFIG"):
        path = Path(environ[ENV_PREFIX + "CONFIG"])
    if path is not None:
        try:
            with path.expanduser().open("rb") as handle:
                table = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        section = dict(table.get("cauldrond", table))
        # [plugins.<name>] tables configure plugins; a plain `plugins = "a,b"` is the load restriction.
        plugin_tables = table.get("plugins")
        if isinstance(plugin_tables, dict):
            if "cauldrond" not in table:
                section.pop("plugins", None)
            values["plugin_settings"] = {str(k): dict(v) for k, v in plugin_tables.items() if isinstance(v, dict)}
        for key, value in section.items():
            values[key] = _coerce(key, value, str(path))

    for name in _FIELD_TYPES:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name], f"${env_name}")

    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")

    data_dir = values.pop("data_dir", None) or default_data_dir()
    settings = Settings(data_dir=Path(data_dir))
    known = {f.name for f in fields(Settings)}
    settings = replace(settings, **{k: v for k, v in values.items() if k in known})
    if not settings.default_model.strip():
        raise ConfigError("setting 'default_model' must name a model (see `cauldrond models list`)")
    if settings.device not in _DEVICES:
        raise ConfigError(f"setting 'device' must be one of {', '.join(_DEVICES)}, got {settings.device!r}")
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"setting 'port' must be 0-65535, got {settings.port}")
    if not -1 <= settings.lan_port <= 65535:
        raise ConfigError(f"setting 'lan_port' must be 0-65535 (or -1 for port + 1), got {settings.lan_port}")
    if settings.postprocess_concurrency < 1 or settings.postprocess_timeout_s < 1:
        raise ConfigError("settings 'postprocess_concurrency' and 'postprocess_timeout_s' must be at least 1")
    if settings.max_batch_size < 1:
        raise ConfigError("setting 'max_batch_size' must be at least 1")
    if not 1 <= settings.max_attempts <= 3 or settings.crash_backoff_s < 0:
        raise ConfigError("setting 'max_attempts' must be 1-3 and 'crash_backoff_s' at least 0")
    if settings.log_format not in _LOG_FORMATS:
        raise ConfigError(f"setting 'log_format' must be one of {', '.join(_LOG_FORMATS)}, got {settings.log_format!r}")
    if settings.max_connections < 1 or settings.max_rpc_in_flight < 1:
        raise ConfigError("settings 'max_connections' and 'max_rpc_in_flight' must be at least 1")
    if settings.preview_every_steps < 1 or settings.preview_max_per_s < 0:
        raise ConfigError("setting 'preview_every_steps' must be at least 1 and 'preview_max_per_s' at least 0")
    if settings.a1111_api not in _A1111_API:
        raise ConfigError(f"setting 'a1111_api' must be one of {', '.join(_A1111_API)}, got {settings.a1111_api!r}")
    _check_scale_out(settings)
    return settings


def _check_scale_out(settings: Settings) -> None:
    if settings.engine not in _ENGINES:
        raise ConfigError(f"setting 'engine' must be one of {', '.join(_ENGINES)}, got {settings.engine!r}")
    address = settings.ray_address.strip()
    if not address or any(ch.isspace() for ch in address):
        raise ConfigError(f"setting 'ray_address' must be \"local\" or a cluster address (host:port), got {address!r}")
    if settings.ray_cpu_workers < 0 or settings.ray_worker_threads < 0 or settings.ray_worker_models < 1:
        raise ConfigError(
            "settings 'ray_cpu_workers' and 'ray_worker_threads' must be at least 0, 'ray_worker_models' at least 1"
        )
