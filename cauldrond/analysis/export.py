"""Export an experiment's images as flat rows: one per image, every parameter its own column, ready for CSV,
JSON, a spreadsheet or pandas.

CSV cells that a spreadsheet would run as a formula (they start with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) get a leading ``'``, as OWASP recommends: prompts are user text, and a prompt such as
``=HYPERLINK(...)`` must not become a live link when someone opens the export. Numbers are written as numbers
(a negative number is not text and cannot be a formula), so only strings are touched. The JSON export is exact.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cauldrond.params import export_columns
from cauldrond.sampler_names import sampler_name_of

Record = Mapping[str, Any]

# The sampler and schedule as one name, as A1111 writes it ("DPM++ 2M Karras"): what a reader filters on.
LABEL_COLUMNS = ("a1111_sampler",)
# Facts about how an image was made that a reader needs to reproduce it, from the image's metadata.
METADATA_COLUMNS = ("model_hash", "device", "dtype")
ANALYSIS_COLUMNS = ("reference_image_id", "distance_mad", "distance_ssim")
FILE_COLUMNS = ("sha256", "path", "size_bytes", "wall_time_s", "peak_memory_bytes", "created_at")


def param_columns() -> tuple[str, ...]:
    """A column per generation param, as params.py declares them (read at each call, never copied here)."""
    return tuple(column for column, _name in export_columns())


def columns() -> tuple[str, ...]:
    """Every known column in its fixed order."""
    ids = ("image_id", "job_id", "experiment_id")
    return (*ids, *param_columns(), *LABEL_COLUMNS, *METADATA_COLUMNS, *FILE_COLUMNS, *ANALYSIS_COLUMNS)


# The columns of GenerationParams as declared, for callers that want a constant.
PARAM_COLUMNS = param_columns()
COLUMNS = columns()
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def image_figures(analysis: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Per image id, its convergence figures from a ``ConvergenceAnalysis.to_dict()`` (or a dict holding one
    under ``"convergence"``, as ``experiments.analyze`` returns)."""
    convergence = analysis.get("convergence", analysis)
    figures: dict[int, dict[str, Any]] = {}
    for series in convergence.get("series", []):
        for point in series["points"]:
            figures[int(point["image_id"])] = {
                "reference_image_id": series["reference_image_id"],
                "distance_mad": point["distance_mad"],
                "distance_ssim": point["distance_ssim"],
            }
    return figures


def export_rows(records: Iterable[Record], analysis: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One flat dict per image record, in the records' order. Params a provider adds beyond the standard ones
    become ``param.NAME`` columns. With ``analysis``, every row gets the analysis columns (empty for images in
    no convergence series)."""
    figures = image_figures(analysis) if analysis is not None else None
    param_to_column = {name: column for column, name in export_columns()}
    rows: list[dict[str, Any]] = []
    for record in records:
        params = record.get("params") or {}
        metadata = record.get("metadata") or {}
        row: dict[str, Any] = {
            "image_id": record.get("id"),
            "job_id": record.get("job_id"),
            "experiment_id": record.get("experiment_id"),
        }
        row.update({column: params.get(name) for name, column in param_to_column.items()})
        row["a1111_sampler"] = sampler_name_of(params) if params.get("sampler") is not None else None
        row.update({name: metadata.get(name) for name in METADATA_COLUMNS})
        for name in FILE_COLUMNS:
            row[name] = record.get(name)
        if figures is not None:
            row.update(figures.get(int(record["id"]), dict.fromkeys(ANALYSIS_COLUMNS)))
        for name in sorted(set(params) - set(param_to_column)):
            row[f"param.{name}"] = params[name]
        rows.append(row)
    return rows


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The known columns in their fixed order, then any others sorted by name."""
    present = {name for row in rows for name in row}
    known = columns()
    return [name for name in known if name in present] + sorted(present - set(known))


def neutralise(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return neutralise(text)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text with a header row; ``None`` becomes an empty cell, lists and dicts JSON text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows), lineterminator="\r\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _csv_cell(value) for name, value in row.items()})
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """A JSON array of the rows, keys in the CSV column order; non-ASCII kept as is (UTF-8). A non-finite float
    (JSON has none) becomes null."""
    columns = columns_of(rows)
    ordered = [{name: _json_value(row[name]) for name in columns if name in row} for row in rows]
    return json.dumps(ordered, ensure_ascii=False, indent=1, allow_nan=False)
