"""The X/Y/Z plot through txt2img (``script_name: "x/y/z plot"``): the script's arguments are read by xyz.py,
the experiment runs like any sweep (planner, batching, model grouping), and the answer is drawn by
xyz_output.py: the labelled grid first, then what the request's switches ask for, as A1111 answers."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from typing import Any

from PIL import Image

from cauldrond.a1111.errors import A1111Error, field_error
from cauldrond.a1111.responses import INFOTEXT_KEY, StoredImage, b64, json_text, txt2img_info, txt2img_parameters
from cauldrond.a1111.state import A1111State
from cauldrond.a1111.tracker import InFlight
from cauldrond.a1111.translate import Txt2ImgPlan
from cauldrond.a1111.xyz import XyzArgumentError, XyzExperiment, parse_script_args, xyz_experiment
from cauldrond.a1111.xyz_output import PlotCell, XyzOutput, compose_xyz_output
from cauldrond.media.png import encode_png
from cauldrond.store import ExperimentRow


def _argument_error(exc: XyzArgumentError) -> A1111Error:
    where = "script_args" if exc.position is None else f"script_args.{exc.position}"
    return field_error(where, str(exc))


async def plan_plot(state: A1111State, txt: Txt2ImgPlan, base: Mapping[str, Any]) -> XyzExperiment:
    if txt.images != 1:
        raise field_error("n_iter", "an X/Y/Z plot makes one image per cell here: send batch_size and n_iter 1")
    try:
        request = parse_script_args(txt.fields.script_args)
    except XyzArgumentError as exc:
        raise _argument_error(exc) from exc
    checkpoints = await state.checkpoints()

    def resolve(name: str) -> str:
        found = next((c for c in checkpoints if c.answers_to(name)), None)
        if found is None:
            raise ValueError(f"no checkpoint {name!r}")
        return found.name

    # The request's own seed: -1 is drawn once for the plot (or per cell with "Keep -1 for seeds").
    plot_base = {**base, "seed": txt.fields.seed}
    try:
        return xyz_experiment(request, plot_base, resolve_checkpoint=resolve)
    except XyzArgumentError as exc:
        raise _argument_error(exc) from exc


async def answer_plot(
    state: A1111State,
    body: Mapping[str, Any],
    xyz: XyzExperiment,
    row: ExperimentRow,
    images: list[StoredImage],
    entry: InFlight,
    *,
    send: bool,
) -> dict[str, Any]:
    jobs = await state.services.store.jobs.page(row.id, row.counts["total"], 0)
    by_image = {image.row.id: image for image in images}
    stored = [by_image.get(job.image_id) if job.image_id is not None else None for job in jobs]
    try:
        output, pngs = await asyncio.to_thread(_compose, xyz, row.spec["resolved_axes"], stored)
    except ValueError as exc:
        raise A1111Error(500, f"the plot could not be drawn: {exc}", error="PlotError") from exc
    seeds = [int(image.row.seed) for image in images] or [int(xyz.base.get("seed", -1))]
    info = txt2img_info(body, xyz.base, seeds, images, entry, state.services.experiments.default_model)
    sources = [stored[index] for index in output.sources]
    info.update(
        all_seeds=[s.row.seed if s is not None else -1 for s in sources],
        all_prompts=[s.row.params.get("prompt", "") if s is not None else "" for s in sources],
        all_negative_prompts=[s.row.params.get("negative_prompt", "") if s is not None else "" for s in sources],
        infotexts=output.infotexts,
        index_of_first_image=sum(1 for kind in output.kinds if kind != "image"),
    )
    return {
        "images": [b64(png) for png in pngs] if send else [],
        "parameters": txt2img_parameters(body),
        "info": json_text(info),
    }


def _compose(
    xyz: XyzExperiment, resolved_axes: list[dict[str, Any]], stored: list[StoredImage | None]
) -> tuple[XyzOutput, list[bytes]]:
    """Decode the cells, draw, and encode each output: a cell's own PNG as stored, a grid with its infotext."""
    cells = []
    for image in stored:
        if image is None:
            cells.append(PlotCell(None, ""))
            continue
        with Image.open(io.BytesIO(image.png)) as opened:
            cells.append(PlotCell(opened.convert("RGB"), image.infotext))
    output = compose_xyz_output(xyz, resolved_axes, cells)
    pngs = []
    for picture, text, kind, source in zip(output.images, output.infotexts, output.kinds, output.sources, strict=True):
        own = stored[source] if kind == "image" else None
        pngs.append(own.png if own is not None else encode_png(picture, {INFOTEXT_KEY: text}))
    return output, pngs
