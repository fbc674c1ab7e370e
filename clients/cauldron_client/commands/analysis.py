"""Looking at finished experiments: ``grid`` (labelled comparison PNGs), ``export`` (CSV/JSON rows) and
``analyze`` (convergence and timing). The daemon renders grids and plots; the client only fetches the files,
so it needs neither numpy nor matplotlib."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from cauldron_client.client import Client
from cauldron_client.commands._common import emit_json, options, run, table
from cauldron_client.commands.images import write_atomically
from cauldron_client.errors import CauldronError

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?")


def parse_fixed(text: str) -> tuple[str, Any]:
    """``--fix seed=1`` -> ``("seed", 1)``. Numbers become numbers, so they equal the axis values the daemon
    stored; anything else (a sampler name, ``512x768``) stays a string."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ValueError(f"expected AXIS=VALUE such as seed=1, got {text!r}")
    if _INT.fullmatch(value):
        return name, int(value)
    if _FLOAT.fullmatch(value):
        return name, float(value)
    return name, value


class FixedValue(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    name = "AXIS=VALUE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_fixed(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def grid_request(
    experiment_id: int,
    x: str,
    y: str | None = None,
    z: str | None = None,
    fixed: Sequence[tuple[str, Any]] = (),
    max_pixels: int | None = None,
) -> dict[str, Any]:
    """Named params for ``experiments.grid``; an axis fixed twice or both on the grid and fixed is refused."""
    on_grid = [axis for axis in (x, y, z) if axis is not None]
    if len(set(on_grid)) != len(on_grid):
        raise ValueError(f"--x, --y and --z must name different axes, got {', '.join(on_grid)}")
    fixed_map: dict[str, Any] = {}
    for axis, value in fixed:
        if axis in fixed_map:
            raise ValueError(f"--fix {axis} is given twice")
        if axis in on_grid:
            raise ValueError(f"{axis!r} is on the grid; it cannot also be fixed")
        fixed_map[axis] = value
    request: dict[str, Any] = {"experiment_id": experiment_id, "x": x}
    if y is not None:
        request["y"] = y
    if z is not None:
        request["z"] = z
    if fixed_map:
        request["fixed"] = fixed_map
    if max_pixels is not None:
        request["max_pixels"] = max_pixels
    return request


def save_file(path: Path, data: bytes) -> Path:
    """Write ``data`` whole (see write_atomically), creating the folder; a path that cannot be written is one
    error line, not a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomically(path, data)
    except OSError as exc:
        raise CauldronError(f"cannot write {path}: {(exc.strerror or str(exc)).lower()}") from None


def grid_file_name(experiment_id: int, n: int) -> str:
    return f"experiment-{experiment_id}-grid-{n}.png"


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT", type=int)
@click.option("--x", "x", required=True, help="Axis along the columns, e.g. sampler.")
@click.option("--y", "y", help="Axis along the rows, e.g. steps.")
@click.option("--z", "z", help="Axis that splits into one grid per value, e.g. seed.")
@click.option(
    "--fix",
    "fixed",
    multiple=True,
    type=FixedValue(),
    help="AXIS=VALUE for an axis not on the grid (repeatable); an unfixed axis splits into further grids.",
)
@click.option("--max-pixels", type=int, help="Pixel budget per grid (the daemon's default: 64,000,000).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the experiment-<id>-grid-<n>.png files (created if missing).",
)
@click.option("--force", is_flag=True, help="Overwrite grid files that already exist in OUT.")
def grid(
    experiment_id: int,
    x: str,
    y: str | None,
    z: str | None,
    fixed: tuple[tuple[str, Any], ...],
    max_pixels: int | None,
    out_dir: Path,
    force: bool,
) -> None:
    """Labelled comparison grids of EXPERIMENT: columns by --x, rows by --y, one grid per --z value.

    An existing file is never overwritten without --force: nothing is written and the command says which."""
    try:
        request = grid_request(experiment_id, x, y, z, fixed, max_pixels)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    async def body(client: Client) -> tuple[Any, list[Path]]:
        result = await client.call("experiments.grid", **request)
        grids = result.get("grids") or []
        paths = [out_dir / grid_file_name(experiment_id, n) for n in range(1, len(grids) + 1)]
        existing = [path for path in paths if path.exists()]
        if existing and not force:  # checked before any is written: all or nothing
            more = f" and {len(existing) - 1} more grid file(s) already exist" if existing[1:] else " already exists"
            raise CauldronError(f"{existing[0]}{more}; pass --force to overwrite, or --out another folder")
        written = []
        for n, item in enumerate(grids, start=1):  # one at a time: a grid can be tens of megabytes
            data = await client.fetch_path(str(item["url"]))
            path = out_dir / grid_file_name(experiment_id, n)
            written.append(await asyncio.to_thread(save_file, path, data))
        return result, written

    result, written = run(body)
    if options().json:
        emit_json({**result, "written": [str(path) for path in written]})
        return
    for path, item in zip(written, result.get("grids") or [], strict=False):
        click.echo(str(path))
        click.echo(f"  {grid_caption(item)}", err=True)
    if not written:
        click.echo("no grids: the experiment has no images yet", err=True)


def grid_caption(item: Mapping[str, Any]) -> str:
    parts = [f"{item.get('width', '?')}x{item.get('height', '?')} px"]
    if item.get("z") is not None:
        parts.append(f"z={_z(item['z'])}")
    fixed = item.get("fixed")
    if isinstance(fixed, Mapping) and fixed:
        parts.append(" ".join(f"{k}={v}" for k, v in fixed.items()))
    return ", ".join(parts)


def _z(value: Any) -> str:
    if isinstance(value, Mapping):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


# -- export --------------------------------------------------------------------------------------------------


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT", type=int, required=False)
@click.option("--format", "fmt", default="csv", show_default=True,
              help="csv, json, or an export format of a plugin (`cauldronctl plugins`; e.g. comfyui).")  # fmt: skip
@click.option("--image", "image_id", type=int, help="Export this image instead of an experiment (plugin formats).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="csv/json: write here instead of stdout. Plugin formats: the folder for the files [default: .].",
)
def export(experiment_id: int | None, fmt: str, image_id: int | None, out: Path | None) -> None:
    """One row per image of EXPERIMENT (csv, json: every parameter, timings, image id and analysis figures), or
    EXPERIMENT or --image ID in a plugin's format, written as files."""
    if (experiment_id is None) == (image_id is None):
        raise click.UsageError("give EXPERIMENT or --image ID")
    if fmt not in ("csv", "json"):
        export_files(fmt, experiment_id, image_id, out or Path("."))
        return
    if experiment_id is None:
        raise click.UsageError("csv and json export experiments; give EXPERIMENT")
    result = run(lambda client: export_parts(client, experiment_id, fmt))
    content = export_text(result.get("content"))
    if out is not None:
        save_file(out, content.encode("utf-8"))
        click.echo(f"{result.get('rows', '?')} row(s) written to {out}", err=True)
    if options().json:
        emit_json(result)
    elif out is None:
        click.echo(content, nl=not content.endswith("\n"))


async def export_parts(client: Client, experiment_id: int, fmt: str) -> dict[str, Any]:
    """``experiments.export`` in as many parts as the daemon splits it into (each reply stays under the frame
    limit), joined: the result has the shape of a one-part reply."""
    result: dict[str, Any] = await client.call("experiments.export", experiment_id=experiment_id, format=fmt)
    parts = [str(result.get("content") or "")]
    for part in range(1, int(result.get("parts") or 1)):
        more = await client.call("experiments.export", experiment_id=experiment_id, format=fmt, part=part)
        parts.append(str(more.get("content") or ""))
    return {**result, "content": "".join(parts), "part": 0, "parts": len(parts)}


def export_files(fmt: str, experiment_id: int | None, image_id: int | None, folder: Path) -> None:
    """``exports.run`` with a plugin's exporter, page after page; each file is written whole into ``folder`` as
    its page arrives, so a 4,000-image experiment never has to fit in one reply."""
    target: dict[str, Any] = {"image_id": image_id} if image_id is not None else {"experiment_id": experiment_id}
    written: list[Path] = []

    async def body(client: Client) -> dict[str, Any]:
        after: int | None = None
        skipped: list[Any] = []
        while True:
            page_target = {**target, "after_image_id": after} if after is not None else target
            page: dict[str, Any] = await client.call("exports.run", format=fmt, **page_target)
            for item in page.get("files") or []:
                name = Path(str(item.get("filename", ""))).name  # a name only: the daemon never picks our folders
                if name in ("", ".", ".."):
                    raise CauldronError(f"the {fmt} exporter returned a file without a usable name")
                written.append(save_file(folder / name, bytes(item.get("content") or b"")))
            skipped += page.get("skipped") or []
            after = page.get("next_after_image_id")
            if after is None:
                return {**page, "skipped": skipped}

    result = run(body)
    # Images the format cannot express (e.g. PLMS in ComfyUI): the others are written, these are named with why.
    skipped = list(result.get("skipped") or [])
    if options().json:
        emit_json({"format": result.get("format"), "written": [str(path) for path in written], "skipped": skipped})
        return
    for path in written:
        click.echo(str(path))
    for item in skipped:
        click.echo(f"skipped image {item.get('image_id')}: {item.get('reason')}", err=True)
    summary = f"{len(written)} file(s) in {fmt} format"
    click.echo(summary + (f"; {len(skipped)} image(s) skipped" if skipped else ""), err=True)


def export_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


# -- analyze -------------------------------------------------------------------------------------------------


def plot_file_name(experiment_id: int) -> str:
    return f"experiment-{experiment_id}-convergence.png"


@click.command()
@click.argument("experiment_id", metavar="EXPERIMENT", type=int)
@click.option("--metric", type=click.Choice(["mad", "ssim"]), default="mad", show_default=True,
              help="Distance to the series' highest-step image: mean absolute difference or 1-SSIM.")  # fmt: skip
@click.option("--threshold", type=float, default=0.02, show_default=True,
              help="A series has converged at the first step count after which it stays under this.")  # fmt: skip
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the plot PNG [default: experiment-<id>-convergence.png].")  # fmt: skip
@click.option("--no-plot", is_flag=True, help="Skip the plot.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON (as the global --json).")
def analyze(
    experiment_id: int, metric: str, threshold: float, plot_file: Path | None, no_plot: bool, as_json: bool
) -> None:
    """Convergence (at how many steps each sampler converges) and timing of EXPERIMENT, as a table and a plot."""
    if plot_file is not None and no_plot:
        raise click.UsageError("--plot FILE and --no-plot: use one")
    request = {"experiment_id": experiment_id, "metric": metric, "threshold": threshold, "plot": not no_plot}

    async def body(client: Client) -> tuple[Any, Path | None]:
        result = await client.call("experiments.analyze", **request)
        plot = result.get("plot")
        if no_plot or not isinstance(plot, Mapping) or not plot.get("url"):
            return result, None
        data = await client.fetch_path(str(plot["url"]))
        path = plot_file or Path(plot_file_name(experiment_id))
        return result, await asyncio.to_thread(save_file, path, data)

    result, written = run(body)
    if as_json or options().json:
        emit_json(result)
        if written is not None:
            click.echo(str(written), err=True)
        return
    click.echo(format_analysis(result, metric, threshold))
    if written is not None:
        click.echo(str(written))
    elif not no_plot:
        click.echo("no plot: the experiment has no series that vary in steps", err=True)


def _num(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value:g}" if float(value).is_integer() else f"{value:.3g}"


def _key(group: Mapping[str, Any]) -> str:
    label = group.get("label")  # the daemon's name for the group: "DPM++ 2M Karras"
    if isinstance(label, str) and label:
        return label
    key = group.get("key")
    if isinstance(key, Mapping):
        return " / ".join(str(v) for v in key.values())
    return "-"


def convergence_rows(result: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """One row per sampler and schedule ("DPM++ 2M Karras"): series, how many converged, median converged-at steps,
    spread, never converged."""
    convergence = result.get("convergence") or {}
    rows = []
    for group in convergence.get("by_sampler") or []:
        at = group.get("converged_at") if isinstance(group.get("converged_at"), Mapping) else {}
        low, high = _num(at.get("min")), _num(at.get("max"))
        spread = f"{low}–{high}" if low is not None and high is not None else None
        rows.append((
            _key(group), group.get("series"), group.get("converged"), _num(at.get("median")), spread,
            group.get("never_converged"),
        ))  # fmt: skip
    return rows


def timing_rows(result: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Seconds per image and per step (medians), per sampler, per model, and over all images."""
    timing = result.get("timing") or {}
    groups: list[tuple[str, Mapping[str, Any]]] = []
    for field in ("by_sampler", "by_model"):
        groups += [(f"{field[3:]} {_key(g)}", g) for g in timing.get(field) or [] if isinstance(g, Mapping)]
    if isinstance(timing.get("overall"), Mapping):
        groups.append(("all images", timing["overall"]))
    rows = []
    for label, group in groups:
        per_image = group.get("seconds_per_image") or {}
        per_step = group.get("seconds_per_step") or {}
        rows.append((label, group.get("count"), _num(per_image.get("median")), _num(per_step.get("median"))))
    return rows


def format_analysis(result: Mapping[str, Any], metric: str, threshold: float) -> str:
    convergence = result.get("convergence") or {}
    metric = str(convergence.get("metric") or metric)
    given = convergence.get("threshold")
    if isinstance(given, int | float) and not isinstance(given, bool):
        threshold = float(given)
    lines = [f"convergence ({metric}, threshold {threshold:g}): steps after which a series stays under the threshold"]
    conv = convergence_rows(result)
    headers = ["sampler", "series", "converged", "median", "spread", "never"]
    lines.append(table(headers, conv) if conv else "  no series that vary only in steps")
    timing = timing_rows(result)
    lines += ["", "timing (medians)"]
    lines.append(table(["group", "images", "s/image", "s/step"], timing) if timing else "  no recorded timings")
    return "\n".join(lines)
