"""Models the daemon makes itself: the offline tiny SD model and single-file checkpoint export."""

from cauldrond.models.single_file import (
    CorruptCheckpointError,
    UnsupportedModelError,
    export_single_file,
    inspect_single_file,
    read_sidecar_config,
    sidecar_config_path,
)
from cauldrond.models.tiny import TINY_MODEL_NOTE, create_tiny_model, is_tiny_model

__all__ = [
    "TINY_MODEL_NOTE",
    "CorruptCheckpointError",
    "UnsupportedModelError",
    "create_tiny_model",
    "export_single_file",
    "inspect_single_file",
    "is_tiny_model",
    "read_sidecar_config",
    "sidecar_config_path",
]
