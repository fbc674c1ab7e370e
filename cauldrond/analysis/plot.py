"""The convergence plot: distance to the highest-step image against steps, one line per sampler and schedule,
named as A1111 names them ("DPM++ 2M", "DPM++ 2M Karras").

Drawn with matplotlib's object API on an Agg canvas, never through pyplot: no display is needed, no global
backend is switched, and a daemon thread can draw while another does the same.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cauldrond.analysis.convergence import ConvergenceAnalysis, group_label
from cauldrond.media.png import write_bytes_atomic

METRIC_LABELS = {
    "mad": "mean abs. pixel difference to highest-step image",
    "ssim": "1 − SSIM against highest-step image",
}


def _as_dict(analysis: ConvergenceAnalysis | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(analysis, ConvergenceAnalysis):
        return analysis.to_dict()
    inner = analysis.get("convergence", analysis)
    assert isinstance(inner, Mapping)
    return inner


def _legend_label(summary: Mapping[str, Any]) -> str:
    reached = summary.get("converged_at")
    median = f", median converged at {reached['median']:g} steps" if reached else ", never converged"
    # Analyses saved before groups carried a label still name their sampler and schedule in the key.
    name = summary.get("label") or group_label(summary["key"])
    return f"{name}: {summary['series']} series{median}"


def render_convergence(analysis: ConvergenceAnalysis | Mapping[str, Any], *, dpi: int = 120) -> bytes:
    """The plot as PNG bytes. Raises ValueError when the analysis holds no step series."""
    buffer = io.BytesIO()
    convergence_figure(analysis, dpi=dpi).savefig(buffer, format="png")
    return buffer.getvalue()


def convergence_figure(analysis: ConvergenceAnalysis | Mapping[str, Any], *, dpi: int = 120) -> Figure:
    """The plot as a matplotlib Figure on an Agg canvas: one line (median) and band (min–max) per group of
    ``by_sampler``. Raises ValueError when the analysis holds no step series."""
    data = _as_dict(analysis)
    summaries = [s for s in data.get("by_sampler", []) if s.get("curve")]
    if not summaries:
        raise ValueError("nothing to plot: no images that differ only in steps (a convergence plot needs step series)")
    metric = str(data.get("metric", "mad"))

    figure = Figure(figsize=(8, 5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for summary in summaries:
        curve = summary["curve"]
        steps = [point["steps"] for point in curve]
        label = _legend_label(summary)
        (line,) = axes.plot(steps, [point["median"] for point in curve], marker="o", markersize=3, label=label)
        if summary["series"] > 1:
            axes.fill_between(
                steps,
                [point["min"] for point in curve],
                [point["max"] for point in curve],
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
    threshold = data.get("threshold")
    if isinstance(threshold, int | float):
        axes.axhline(threshold, color="0.4", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes.set_xlabel("steps")
    axes.set_ylabel(METRIC_LABELS.get(metric, metric))
    axes.set_title("Convergence per sampler and schedule: median across series, band = min–max")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    return figure


def plot_convergence(analysis: ConvergenceAnalysis | Mapping[str, Any], out_file: Path) -> Path:
    """Write the convergence plot to ``out_file`` as PNG, atomically (temp file, fsync, rename): a reader never
    sees half a file. Accepts a ``ConvergenceAnalysis``, its ``to_dict()``, or a dict holding that under
    ``"convergence"``."""
    out_file = Path(out_file)
    return write_bytes_atomic(render_convergence(analysis), out_file.parent, out_file.name)
