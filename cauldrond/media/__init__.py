"""Image files on disk: atomic PNG writes with A1111-compatible metadata."""

from cauldrond.media.png import (
    TEMP_PREFIX,
    WrittenFile,
    a1111_parameters,
    is_temp_name,
    png_text_chunks,
    read_png_text,
    write_png_atomic,
)

__all__ = [
    "TEMP_PREFIX",
    "WrittenFile",
    "a1111_parameters",
    "is_temp_name",
    "png_text_chunks",
    "read_png_text",
    "write_png_atomic",
]
