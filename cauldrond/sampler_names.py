"""The name a person reads for a sampler and its schedule, as AUTOMATIC1111 writes it: "DPM++ 2M Karras".

Params keep the sampler and the schedule apart (A1111 1.9+ made the schedule type its own choice), but a table
row, a plot series or a grid label needs one name, and A1111 users know the combined names its sampler list had
before 1.9 ("DPM++ 2M Karras", "DPM++ SDE Karras", "DPM++ 2M SDE Exponential"). The automatic schedule adds
nothing: "DPM++ 2M". Everything that groups or labels by sampler uses this, so two schedules of one sampler are
never merged. (The client has the same rule in ``cauldron_client.sampler_names``; it installs without the daemon.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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


def split_sampler_name(
    name: str, schedules: Mapping[str, str], samplers: Collection[str] | None = None
) -> tuple[str, str | None] | None:
    """A sampler name read as A1111 1.9+ reads one back, the one parser of sampler names (experiment creation,
    the diffusers provider and the infotext importer all call it).

    ``"DPM++ 2M Karras"`` is sampler ``"DPM++ 2M"`` with schedule ``"Karras"``: ``schedules`` maps each suffix a
    name may carry (any letter case) to the schedule it means. With ``samplers``, a name is matched against them
    (any case, runs of spaces as one) and returned as they spell it, whole names first (a sampler whose name
    ends like a schedule stays whole); ``None`` when it is no known sampler, with or without a suffix. Without
    ``samplers`` any name splits off a known suffix. The schedule is None when the name carries none."""
    text = " ".join(name.split())
    by_lower = {sampler.lower(): sampler for sampler in samplers} if samplers is not None else None
    if by_lower is not None and text.lower() in by_lower:
        return by_lower[text.lower()], None
    # Longest suffix first, so "SGM Uniform" wins over "Uniform".
    for suffix in sorted(schedules, key=len, reverse=True):
        head = text[: -len(suffix) - 1]
        if not head or not text.lower().endswith(" " + suffix.lower()):
            continue
        if by_lower is None:
            return head, schedules[suffix]
        if head.lower() in by_lower:
            return by_lower[head.lower()], schedules[suffix]
    return None if by_lower is not None else (text, None)
