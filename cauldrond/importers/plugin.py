"""Entry point of the built-in A1111 importer (``[project.entry-points.cauldron] a1111``): registered through
``cauldron_register_importers`` exactly as a third-party importer is."""

from __future__ import annotations

from collections.abc import Callable

from cauldrond.config import Settings
from cauldrond.importers.a1111 import import_a1111
from cauldrond.plugins.hookspecs import hookimpl
from cauldrond.plugins.interfaces import Importer

IMPORTER = Importer(
    name="a1111",
    description="AUTOMATIC1111 infotext: a PNG's 'parameters' chunk (A1111's PNGs and ours) or pasted text",
    import_file=import_a1111,
)


@hookimpl
def cauldron_register_importers(register: Callable[[Importer], None], settings: Settings) -> None:
    register(IMPORTER)
