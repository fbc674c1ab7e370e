"""Scale-out through Ray (docs/scale-out.md): with ``engine = "ray"`` the daemon's engine dispatches batches to Ray
actors, one per GPU, instead of its own worker thread. SQLite stays the one queue; the daemon writes every image.

Nothing here imports Ray at module level: the extra is optional, and ``engine = "local"`` never needs it.
"""

from __future__ import annotations

from typing import Any

from cauldrond.config import Settings
from cauldrond.engine import Engine


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    """The engine the ``engine`` setting names: the local one, or the Ray dispatcher (scaleout/dispatch.py)."""
    if settings.engine == "ray":
        from cauldrond.scaleout.dispatch import RayEngine

        return RayEngine(settings=settings, **kwargs)
    return Engine(**kwargs)
