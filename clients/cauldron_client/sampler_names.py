"""The name a person reads for a sampler and its schedule, as AUTOMATIC1111 writes it: "DPM++ 2M Karras".

Params keep the sampler and the schedule apart (A1111 1.9+ made the schedule type its own choice), but a table
row, a plot series or a grid label needs one name, and A1111 users know the combined names its sampler list had
before 1.9 ("DPM++ 2M Karras", "DPM++ SDE Karras", "DPM++ 2M SDE Exponential"). The automatic schedule adds
nothing: "DPM++ 2M". Everything that groups or labels by sampler uses this, so two schedules of one sampler are
never merged. (The daemon has the same rule in ``cauldrond.sampler_names``; the client installs without it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AUTOMATIC = "Automatic"


def a1111_sampler_name(sampler: str, schedule: str | None = AUTOMATIC) -> str:
    """``("DPM++ 2M", "Karras")`` → ``"DPM++ 2M Karras"``; ``("DPM++ 2M", "Automatic")`` → ``"DPM++ 2M"``.
    A sampler that already ends with its schedule (a legacy combined name) is not named twice."""
    if not schedule or schedule.strip().lower() == AUTOMATIC.lower():
        return sampler
    if sampler.lower().endswith(" " + schedule.lower()):
        return sampler
    return f"{sampler} {schedule}"


def sampler_name_of(params: Mapping[str, Any]) -> str:
    """The A1111 name of the sampler and schedule in a params mapping (a job's, an image's)."""
    schedule = params.get("schedule")
    return a1111_sampler_name(str(params.get("sampler")), schedule if isinstance(schedule, str) else None)
