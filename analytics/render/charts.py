"""Charts as SVG bytes, drawn with matplotlib's object API (no pyplot state, no files).

matplotlib is imported on first use so that importing :mod:`analytics` stays cheap.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from analytics.report_model import Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MAX_PANELS = 6
# Lines of the duration chart (two each, p50 and p95): the legend of more does not fit the figure.
MAX_SERIES = 8


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasSVG(fig)
    return fig


def _svg(fig: Figure) -> bytes:
    import matplotlib as mpl

    buffer = io.BytesIO()
    # A fixed hash salt and no date keep the SVG identical for identical reports.
    with mpl.rc_context({"svg.hashsalt": "trinity", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _empty(message: str) -> bytes:
    fig = _figure(6, 1.5)
    fig.text(0.5, 0.5, message, ha="center", va="center")
    return _svg(fig)


def duration_trends_svg(report: Report) -> bytes:
    """Daily p50 (solid) and p95 (dashed) of completed-run durations per workflow."""
    drawable = [w for w in report.performance.workflows if any(d.p50_seconds is not None for d in w.daily)]
    if not drawable:
        return _empty("No completed runs in this window")
    busiest = sorted(drawable, key=lambda w: (-w.runs, w.workflow))[:MAX_SERIES]
    series = [w for w in drawable if w in busiest]
    fig = _figure(9, 4.5)
    ax = fig.add_subplot()
    for i, w in enumerate(series):
        color = f"C{i % 10}"
        days = np.array([np.datetime64(d.date) for d in w.daily])
        p50 = np.array([np.nan if d.p50_seconds is None else d.p50_seconds for d in w.daily])
        p95 = np.array([np.nan if d.p95_seconds is None else d.p95_seconds for d in w.daily])
        ax.plot(days, p50, color=color, label=f"{w.workflow} p50")
        ax.plot(days, p95, color=color, linestyle="--", label=f"{w.workflow} p95")
    ax.set_ylabel("run duration (s)")
    title = "Completed run duration per day"
    if len(series) < len(drawable):
        title += f" (the {len(series)} busiest of {len(drawable)} workflows)"
    ax.set_title(title)
    ax.legend(fontsize="small", ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _svg(fig)


def critical_path_gantt_svg(report: Report) -> bytes:
    """A typical run per workflow (critical path closest to the median), critical tasks highlighted."""
    sections = [b for b in report.bottlenecks if b.example_bars][:MAX_PANELS]
    if not sections:
        return _empty("No completed run could be placed on its DAG")
    heights = [max(1.5, 0.35 * len(b.example_bars) + 0.8) for b in sections]
    fig = _figure(9, sum(heights))
    axes = fig.subplots(len(sections), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, b in zip(axes, sections, strict=True):
        bars = b.example_bars
        y = np.arange(len(bars))
        starts = [bar.start_offset_seconds for bar in bars]
        widths = [max(bar.end_offset_seconds - bar.start_offset_seconds, 0.0) for bar in bars]
        colors = ["#c0392b" if bar.critical else "#95a5a6" for bar in bars]
        ax.barh(y, widths, left=starts, color=colors)
        ax.set_yticks(y, [bar.task_id for bar in bars], fontsize="small")
        ax.invert_yaxis()
        ax.set_title(f"{b.workflow}: run {b.example_run_id} (red: critical path)", fontsize="small")
        ax.set_xlabel("seconds after run start", fontsize="small")
    fig.tight_layout()
    return _svg(fig)


def usage_heatmap_svg(report: Report) -> bytes:
    """Runs by weekday and hour of day (UTC)."""
    grid = np.asarray(report.usage.weekday_hour, dtype=float)
    if grid.size == 0 or grid.sum() == 0:
        return _empty("No runs in this window")
    fig = _figure(10, 3.6)
    ax = fig.add_subplot()
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_yticks(range(7), _WEEKDAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("hour of day (UTC)")
    ax.set_title("Runs by weekday and hour")
    fig.colorbar(image, ax=ax, label="runs")
    fig.tight_layout()
    return _svg(fig)
